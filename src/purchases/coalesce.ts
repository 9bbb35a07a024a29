import type { Db } from '../db';
import type { Clock } from '../clock';
import { ingestPurchases } from './service';
import { getPurchases, PurchaseView } from './repo';
import { notFound } from '../errors';
import type { PurchaseInput } from './schema';

type Outcome = { id: string; created: boolean; view: PurchaseView };
interface Waiter {
  row: PurchaseInput;
  resolve(o: Outcome): void;
  reject(err: unknown): void;
}

/** At most this many single purchases are stored by one transaction. */
const MAX_GROUP = 200;
/** Transactions in flight per workspace; more requests wait and join the next group. */
const MAX_IN_FLIGHT = 4;

/**
 * Group commit for POST /v1/purchases. Concurrent single purchases of one workspace are stored
 * together by the set-based batch path: each transaction costs ~6 round trips whatever its size,
 * so 32 concurrent tills cost a few transactions instead of 32. A lone request is not delayed (it
 * goes at the next turn of the event loop). The semantics are the batch path's: the same orderId
 * twice in a group is stored once, created for the first and a replay for the others. If a group
 * fails for a reason other than the database being down, its rows are retried one by one, so one
 * request's failure is never another's.
 */
export function purchaseCoalescer(db: Db, clock: Clock) {
  const queues = new Map<string, { waiting: Waiter[]; inFlight: number }>();

  const run = async (workspaceId: string, group: Waiter[]) => {
    let outcomes: Array<{ id: string; created: boolean }>;
    try {
      ({ outcomes } = await ingestPurchases(db, workspaceId, group.map((w) => w.row), clock.now()));
    } catch (err) {
      if (group.length === 1 || isDependencyError(err)) group.forEach((w) => w.reject(err));
      else
        await Promise.all(
          group.map(async (w) => {
            try {
              const o = (await ingestPurchases(db, workspaceId, [w.row], clock.now())).outcomes[0]!;
              answer(w, o, await getPurchases(db, workspaceId, [o.id]));
            } catch (e) {
              w.reject(e);
            }
          }),
        );
      return;
    }
    // The group's answers are read back in one round trip too, after the commit. A failure here
    // is not retried row by row: the rows are stored, and a retry would answer 200 for a 201.
    try {
      const views = await getPurchases(db, workspaceId, [...new Set(outcomes.map((o) => o.id))]);
      group.forEach((w, i) => answer(w, outcomes[i]!, views));
    } catch (err) {
      group.forEach((w) => w.reject(err));
    }
  };

  const pump = (workspaceId: string) => {
    const q = queues.get(workspaceId);
    if (!q) return;
    while (q.waiting.length && q.inFlight < MAX_IN_FLIGHT) {
      const group = q.waiting.splice(0, MAX_GROUP);
      q.inFlight++;
      void run(workspaceId, group).finally(() => {
        q.inFlight--;
        if (!q.waiting.length && !q.inFlight) queues.delete(workspaceId);
        else pump(workspaceId);
      });
    }
  };

  return (workspaceId: string, row: PurchaseInput): Promise<Outcome> =>
    new Promise<Outcome>((resolve, reject) => {
      let q = queues.get(workspaceId);
      if (!q) queues.set(workspaceId, (q = { waiting: [], inFlight: 0 }));
      q.waiting.push({ row, resolve, reject });
      // Requests parsed in the same turn of the event loop join one group.
      if (q.waiting.length === 1) setImmediate(() => pump(workspaceId));
    });
}

/** A purchase erased between the commit and the read-back is gone: 404, as a GET would say. */
function answer(w: Waiter, o: { id: string; created: boolean }, views: Map<string, PurchaseView>) {
  const view = views.get(o.id);
  if (view) w.resolve({ id: o.id, created: o.created, view });
  else w.reject(notFound('purchase'));
}

function isDependencyError(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '53300'].includes(e.code ?? '') || /Timeout acquiring a connection/.test(e.message ?? '');
}
