import type { Knex } from 'knex';
import type { Db } from '../db';
import { ingestPurchases } from '../purchases/service';
import type { PurchaseInput } from '../purchases/schema';
import { zMoney } from '../normalize';
import * as repo from './repo';
import type { StagedRow } from './rows';

type Conn = Db | Knex.Transaction;

/** Staged rows read per apply page (~2,700 orders of 3 rows: ~670 purchases per lane). */
const APPLY_PAGE = 8000;
/** Purchases per call of the purchase service: the batch API's own maximum. */
const SERVICE_BATCH = 1000;
const MAX_ITEMS = 500;
/** Transactions in flight, one per lane (as many as the batch bench's clients). */
export const LANES = 4;

export interface ApplyHooks {
  /** Called after each applied batch (tests use it to stop a job half-way, as a crash would). */
  afterPage?: (applied: number) => void | Promise<void>;
}

type PurchaseRowData = Omit<PurchaseInput, 'items' | 'total'> & { total?: number; item: NonNullable<PurchaseInput['items']>[number] };

/**
 * One order's rows (in line order) as one purchase, or the reason it is skipped whole. Each row
 * passed the API's purchase schema at parse (as a one-item purchase, with the first row's head);
 * what is new here is the number of items and the total summed from them.
 */
export function assemble(rows: StagedRow[]): { purchase: PurchaseInput } | { error: string } {
  const bad = rows.find((r) => r.error !== null);
  if (bad) return { error: `purchase ${rows[0]!.key} skipped: line ${bad.line} is rejected (${bad.error})` };
  if (rows.length > MAX_ITEMS) return { error: `purchase ${rows[0]!.key} skipped: it has ${rows.length} item rows (at most ${MAX_ITEMS})` };
  const first = rows[0]!.data as unknown as PurchaseRowData;
  const items = rows.map((r) => (r.data as unknown as PurchaseRowData).item);
  const { item: _i, total, ...head } = first;
  let sum = total;
  if (sum === undefined) {
    let cents = 0;
    for (const i of items) cents += Math.round(i.unitPrice * 100) * i.quantity;
    sum = cents / 100;
    const ok = zMoney.safeParse(sum);
    if (!ok.success) return { error: `purchase ${rows[0]!.key} skipped: total: ${ok.error.issues[0]!.message}` };
  }
  return { purchase: { ...head, total: sum, items } };
}

/**
 * The lane of an order: its customer's, from the first row that names one (a row keeps its data
 * when the apply rejects it, so a resumed job finds the same lane). Orders of one customer go
 * down one lane, so the transactions in flight never wait on each other's customer or stats locks.
 */
export function laneOf(rows: StagedRow[]): number {
  const d = rows.find((r) => r.data !== null)?.data as { customer?: { externalId?: string; email?: string; phone?: string } } | undefined;
  const c = d?.customer;
  const s = c?.externalId ?? c?.email?.toLowerCase() ?? c?.phone ?? '';
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) % LANES;
}

interface Unit {
  lane: number;
  good: PurchaseInput[];
  rows: number;
  rejected: Array<{ line: number; error: string }>;
  first: string;
  last: string;
}

/**
 * Purchases in orderId order, page by page, each order sent down its customer's lane; a lane
 * stores its batches ("units", at most SERVICE_BATCH purchases) one after another, the four lanes
 * side by side. Each unit's transaction (the purchase service's own) records its range of orderIds
 * and its lane as applied, with its counts; the resume point moves past a page once every unit of
 * it and of the pages before has committed. A job resuming after a crash starts at the resume
 * point and skips, lane by lane, the ranges applied beyond it: nothing is stored or counted twice.
 * At most two pages are in flight (memory stays bounded whatever the file's size).
 */
export async function applyPurchases(db: Db, imp: repo.ImportRow, now: () => Date, hooks: ApplyHooks) {
  let readCursor = imp.apply_cursor;
  const skip = imp.done_ranges ?? [];
  let applied = imp.rows_applied;
  const staged = Math.max(1, imp.rows_staged);
  const lanes: Array<Promise<void>> = new Array(LANES).fill(Promise.resolve());
  let failure: unknown = null;
  let settled: Promise<unknown> = Promise.resolve(); // every unit dispatched so far, and the cursor moves

  const commit = async (u: Unit) => {
    applied += u.rows;
    const record = (conn: Conn, accepted: number, duplicates: number) =>
      repo.recordApplied(conn, imp.id, { cursor: u.last, range: [u.first, u.last, u.lane], rows: u.rows, accepted, duplicates, rejected: u.rejected, progress: 0.5 + 0.5 * Math.min(1, applied / staged) });
    if (!u.good.length) await record(db, 0, 0);
    else {
      await ingestPurchases(db, imp.workspace_id, u.good, now(), {
        beforeCommit: async (trx, { outcomes }) => {
          const accepted = outcomes.filter((o) => o.created).length;
          await record(trx, accepted, outcomes.length - accepted);
        },
      });
    }
    await hooks.afterPage?.(applied);
  };
  const dispatch = (u: Unit): Promise<void> => {
    const p = lanes[u.lane]!.then(() => (failure ? undefined : commit(u))).catch((err: unknown) => {
      failure ??= err;
    });
    lanes[u.lane] = p;
    return p;
  };

  for (;;) {
    if (failure) break;
    const rows = await repo.purchaseRowsAfter(db, imp.id, readCursor, APPLY_PAGE);
    if (!rows.length) break;
    // A full page may end inside an order: that order waits for the next page, whole.
    let page = rows;
    if (rows.length === APPLY_PAGE) {
      const lastKey = rows[rows.length - 1]!.key;
      const cut = rows.findIndex((r) => r.key === lastKey);
      if (cut > 0) page = rows.slice(0, cut);
    }
    const orders: StagedRow[][] = [];
    for (const r of page) {
      const cur = orders[orders.length - 1];
      if (cur && cur[0]!.key === r.key) cur.push(r);
      else orders.push([r]);
    }
    // Batches a dead worker committed past its resume point: by key, the lanes that applied it.
    const covered = skip.length ? await repo.coveredKeys(db, orders.map((o) => o[0]!.key!), skip) : null;
    // An order of more than a page's rows: rejected whole, its other rows too, without reading them now.
    const oversized = page.length === APPLY_PAGE && orders.length === 1;
    const units: Array<Unit | null> = new Array(LANES).fill(null);
    const sent: Array<Promise<void>> = [];
    for (const rowsOfOrder of orders) {
      const key = rowsOfOrder[0]!.key!;
      const lane = laneOf(rowsOfOrder);
      const done = covered?.get(key);
      if (done && (done.has(lane) || done.has(-1))) continue;
      const unit = (units[lane] ??= { lane, good: [], rows: 0, rejected: [], first: key, last: key });
      const a = oversized ? { error: `purchase ${key} skipped: it has more than ${MAX_ITEMS} item rows` } : assemble(rowsOfOrder);
      if ('purchase' in a) unit.good.push(a.purchase);
      // Rows already rejected at parse are counted; the others of the order are rejected now.
      else for (const r of rowsOfOrder) if (r.error === null) unit.rejected.push({ line: r.line, error: a.error });
      unit.rows += rowsOfOrder.length;
      unit.last = key;
      if (oversized) await skipOrderRows(db, imp.id, key, unit.rejected);
      if (unit.good.length >= SERVICE_BATCH) {
        sent.push(dispatch(unit));
        units[lane] = null;
      }
    }
    for (const u of units) if (u) sent.push(dispatch(u));
    const pageEnd = page[page.length - 1]!.key!;
    const previous = settled;
    settled = Promise.all([previous, ...sent]).then(() => (failure ? undefined : repo.advanceCursor(db, imp.id, pageEnd).catch((err: unknown) => void (failure ??= err))));
    readCursor = pageEnd;
    // Backpressure: this page may still be in flight while the next is read, the one before not.
    await previous;
  }
  await settled;
  await Promise.all(lanes);
  if (failure) throw failure;
}

/** The rest of an order too large for one page: its remaining rows are rejected too. */
async function skipOrderRows(db: Db, importId: string, key: string, rejected: Array<{ line: number; error: string }>): Promise<void> {
  const rest = await db('import_rows').where({ import_id: importId, key }).whereNull('error').select('line');
  const seen = new Set(rejected.map((r) => r.line));
  for (const r of rest as Array<{ line: number }>) if (!seen.has(r.line)) rejected.push({ line: r.line, error: `purchase ${key} skipped: it has more than ${MAX_ITEMS} item rows` });
}
