import type { Db } from '../db';
import type { Clock } from '../clock';
import { ingestPurchases } from './service';
import { ingestKnown, KnownRow } from './known';
import { createdView, getPurchasesByOrder, PurchaseView } from './repo';
import { notFound } from '../errors';
import type { PurchaseInput } from './schema';

type Answer = { id: string; created: boolean; view: PurchaseView };
interface Waiter {
  row: PurchaseInput;
  resolve(o: Answer): void;
  reject(err: unknown): void;
}

/** At most this many single purchases are stored by one group. */
const MAX_GROUP = 200;
/**
 * Groups in flight per workspace. Every group has a fixed cost (a statement, a commit to flush)
 * whatever its size, so requests wait for the group in flight and join the next one, which makes
 * groups larger the busier the server is; Node answers one group while Postgres stores the next.
 * A second group starts beside it only when enough requests wait to make one worth its cost:
 * when the group in flight is slow (a commit held up by a checkpoint, a row lock), they are not
 * all held behind it.
 */
const MAX_IN_FLIGHT = 2;
const SECOND_GROUP_AT = 16;

/** What storing one fresh row came to: created (with its answer), a replay, or a failure. */
type Fate = { created: Answer } | 'replay' | { failed: unknown };

/**
 * Group commit for POST /v1/purchases. Concurrent single purchases of one workspace are stored
 * together: those naming a known customer by externalId (a till's usual request) by one
 * statement (ingestKnown: one round trip), the rest, and those whose customer does not exist
 * yet, by the batch path (identity resolution, which may create the customer). A lone request is
 * not delayed (it goes at the next turn of the event loop). The same orderId twice in a group is
 * stored once, created for the first and a replay for the others. Created purchases are answered
 * from what was written; replays are read back after the commit, one round trip for the group.
 * If a statement fails for a reason other than the database being down, its rows are retried one
 * by one, so one request's failure is never another's. `onCreated` is called (it must not throw
 * nor wait) once a group's commit has stored new purchases: the attribution wake-up.
 */
export function purchaseCoalescer(db: Db, clock: Clock, onCreated: () => void = () => undefined) {
  const queues = new Map<string, { waiting: Waiter[]; inFlight: number }>();

  /** Stores fresh rows by `store`; on a failure, one by one by the full path. */
  const attempt = async (workspaceId: string, rows: PurchaseInput[], store: (rows: PurchaseInput[]) => Promise<(Fate | 'unknown')[]>): Promise<(Fate | 'unknown')[]> => {
    try {
      return await store(rows);
    } catch (err) {
      if (rows.length === 1 || isDependencyError(err)) return rows.map(() => ({ failed: err }));
      return Promise.all(rows.map((r) => full(workspaceId, [r]).then((f) => f[0]!, (e: unknown) => ({ failed: e }))));
    }
  };

  const full = async (workspaceId: string, rows: PurchaseInput[]): Promise<Fate[]> => {
    const { outcomes } = await ingestPurchases(db, workspaceId, rows, clock.now());
    return outcomes.map((o, k) => (o.stored ? { created: { id: o.id, created: true, view: createdView(rows[k]!, o.id, o.customerId, o.stored) } } : 'replay'));
  };

  const known = async (workspaceId: string, rows: PurchaseInput[]): Promise<(Fate | 'unknown')[]> => {
    const { inserted, found } = await ingestKnown(db, workspaceId, rows as KnownRow[], clock.now());
    return rows.map((r): Fate | 'unknown' => {
      const ins = inserted.get(r.orderId);
      if (ins) return { created: { id: ins.id, created: true, view: createdView(r, ins.id, ins.customerId, { externalId: r.customer.externalId!, occurredAt: ins.occurredAt }) } };
      return found.has(r.customer.externalId!) ? 'replay' : 'unknown';
    });
  };

  const run = async (workspaceId: string, group: Waiter[]) => {
    // The first request of each orderId is fresh; later ones in the group are replays of it.
    const first = new Map<string, number>();
    group.forEach((w, i) => first.has(w.row.orderId) || first.set(w.row.orderId, i));
    const fates = new Map<number, Fate>();
    const byKnown = [...first.values()].filter((i) => group[i]!.row.customer.externalId);
    const other = [...first.values()].filter((i) => !group[i]!.row.customer.externalId);
    if (byKnown.length) {
      const got = await attempt(workspaceId, byKnown.map((i) => group[i]!.row), (rows) => known(workspaceId, rows));
      byKnown.forEach((i, k) => (got[k] === 'unknown' ? other.push(i) : fates.set(i, got[k] as Fate)));
    }
    if (other.length) {
      const got = await attempt(workspaceId, other.map((i) => group[i]!.row), (rows) => full(workspaceId, rows));
      other.forEach((i, k) => fates.set(i, got[k] as Fate));
    }
    // Replays of a row that failed are tried on their own: their bodies may differ.
    const failed = (f: Fate | undefined) => typeof f === 'object' && 'failed' in f;
    const alone = group.map((_, i) => i).filter((i) => !fates.has(i) && failed(fates.get(first.get(group[i]!.row.orderId)!)));
    await Promise.all(alone.map(async (i) => fates.set(i, (await attempt(workspaceId, [group[i]!.row], (rows) => full(workspaceId, rows)))[0] as Fate)));
    if ([...fates.values()].some((f) => typeof f === 'object' && 'created' in f)) onCreated();

    const replays = group.filter((w, i) => (fates.get(i) ?? 'replay') === 'replay').map((w) => w.row.orderId);
    let views = new Map<string, PurchaseView>();
    let readErr: unknown;
    // A failure of this read is not retried row by row: the rows are stored, and a retry would
    // answer 200 for a 201.
    if (replays.length) await getPurchasesByOrder(db, workspaceId, [...new Set(replays)]).then((v) => (views = v), (e: unknown) => (readErr = e ?? new Error('read-back failed')));
    group.forEach((w, i) => {
      const fate = fates.get(i) ?? 'replay';
      if (fate !== 'replay') return 'created' in fate ? w.resolve(fate.created) : w.reject(fate.failed);
      if (readErr) return w.reject(readErr);
      // A purchase erased between the commit and the read-back is gone: 404, as a GET would say.
      const view = views.get(w.row.orderId);
      if (view) w.resolve({ id: view.id, created: false, view });
      else w.reject(notFound('purchase'));
    });
  };

  const pump = (workspaceId: string) => {
    const q = queues.get(workspaceId);
    if (!q) return;
    while (q.waiting.length && (q.inFlight === 0 || (q.inFlight < MAX_IN_FLIGHT && q.waiting.length >= SECOND_GROUP_AT))) {
      const group = q.waiting.splice(0, MAX_GROUP);
      q.inFlight++;
      void run(workspaceId, group)
        .catch((err: unknown) => group.forEach((w) => w.reject(err)))
        .finally(() => {
          q.inFlight--;
          if (!q.waiting.length && !q.inFlight) queues.delete(workspaceId);
          else pump(workspaceId);
        });
    }
  };

  return (workspaceId: string, row: PurchaseInput): Promise<Answer> =>
    new Promise<Answer>((resolve, reject) => {
      let q = queues.get(workspaceId);
      if (!q) queues.set(workspaceId, (q = { waiting: [], inFlight: 0 }));
      q.waiting.push({ row, resolve, reject });
      // Requests parsed in the same turn of the event loop join one group.
      if (q.waiting.length === 1 || q.waiting.length === SECOND_GROUP_AT) setImmediate(() => pump(workspaceId));
    });
}

function isDependencyError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '53300'].includes(e.code ?? '') || /Timeout acquiring a connection/.test(e.message ?? '');
}
