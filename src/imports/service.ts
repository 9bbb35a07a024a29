import { TextDecoder } from 'node:util';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { Knex } from 'knex';
import type { Db } from '../db';

type Conn = Db | Knex.Transaction;
import type { Logger } from '../logger';
import { AppError } from '../errors';
import { ingestPurchases } from '../purchases/service';
import { purchaseBody, PurchaseInput } from '../purchases/schema';
import { upsertCustomers, UpsertRow } from '../customers/repo';
import * as repo from './repo';
import { Columns, resolveHeader, rowConverter, StagedRow } from './rows';

/** Rows staged per statement, and staged rows read per apply page. */
const STAGE_BATCH = 2000;
const APPLY_PAGE = 5000;
/** Purchases per call of the purchase service: the batch API's own maximum. */
const SERVICE_BATCH = 1000;
const MAX_ITEMS = 500;

export interface ImportHooks {
  /** Called after each applied page (tests use it to stop a job half-way, as a crash would). */
  afterPage?: (applied: number) => void | Promise<void>;
}

export interface ProcessResult {
  workspaceId: string;
  kind: 'customers' | 'purchases';
  status: 'done' | 'failed';
  accepted: number;
  duplicates: number;
  rejected: number;
}

/**
 * Runs one import, in two phases:
 * - parse: the file, read back from import_chunks piece by piece and streamed through csv-parse,
 *   becomes validated rows in import_rows (a bad row is staged with its reason). A file that cannot
 *   be read as CSV (an unterminated quote) fails the import here, before anything is applied.
 *   A job that dies in this phase starts it again from the top (it only wrote staging rows).
 * - apply: purchases in (orderId, line) order, so the item rows of one order, wherever they stood
 *   in the file, come together, through the purchase service the batch API uses (same statements,
 *   stats, feed); customers in file order through the customer service. The resume point and the
 *   counters move inside the transaction that stores each batch: a job that dies here resumes
 *   exactly past the last committed batch (and a batch re-run would anyway be a no-op: orderIds
 *   are unique, customers upsert).
 */
export async function processImport(db: Db, logger: Logger, importId: string, now: () => Date, hooks: ImportHooks = {}): Promise<ProcessResult | null> {
  let imp = await repo.getImportById(db, importId);
  if (!imp || imp.status === 'done' || imp.status === 'failed' || imp.status === 'uploading') return null;
  // A Postgres crash empties the unlogged staging table: an import caught in its apply phase then
  // parses its file again (what it applied already counts as duplicates the second time).
  if (imp.phase === 'apply' && imp.rows_applied < imp.rows_staged && !(await repo.hasStagedRows(db, importId))) imp = { ...imp, phase: 'parse' };
  if (imp.phase === 'parse') {
    await repo.startParse(db, importId, now());
    const parsed = await parsePhase(db, importId, imp);
    if (parsed) {
      await repo.fail(db, importId, parsed.reason, parsed.errors, now());
      logger.info({ importId, reason: parsed.reason }, 'import failed');
      return { workspaceId: imp.workspace_id, kind: imp.kind, status: 'failed', accepted: 0, duplicates: 0, rejected: 0 };
    }
    await repo.startApply(db, importId);
    imp = (await repo.getImportById(db, importId))!;
  }
  if (imp.kind === 'purchases') await applyPurchases(db, imp, now, hooks);
  else await applyCustomers(db, imp, now, hooks);
  await repo.finish(db, importId, now());
  const done = (await repo.getImportById(db, importId))!;
  logger.info({ importId, accepted: done.accepted, duplicates: done.duplicates, rejected: done.rejected }, 'import done');
  return { workspaceId: imp.workspace_id, kind: imp.kind, status: 'done', accepted: done.accepted, duplicates: done.duplicates, rejected: done.rejected };
}

/** Parses and stages the file; returns why the file as a whole cannot be imported, or null. */
async function parsePhase(db: Db, importId: string, imp: repo.ImportRow): Promise<{ reason: string; errors: Array<{ line: number; error: string }> } | null> {
  const total = Number(imp.bytes) || 1;
  const decoder = new TextDecoder(imp.options.encoding, { fatal: true });
  let read = 0;
  async function* text() {
    for await (const buf of repo.readChunks(db, importId)) {
      read += buf.length;
      yield decoder.decode(buf, { stream: true });
    }
    yield decoder.decode();
  }
  const parser = Readable.from(text()).pipe(parse({ relax_column_count: true, skip_empty_lines: true, info: true, bom: true, max_record_size: 1024 * 1024 }));
  let convert: ((line: number, record: string[]) => StagedRow) | null = null;
  let batch: StagedRow[] = [];
  let inflight: Promise<void> = Promise.resolve();
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      // info.lines is the line the record ends on; a quoted field may span lines.
      let inner = 0;
      for (const f of record) for (let i = f.indexOf('\n'); i !== -1; i = f.indexOf('\n', i + 1)) inner++;
      const line = info.lines - inner;
      if (!convert) {
        const cols: Columns = resolveHeader(imp.kind, record, imp.options.mapping);
        convert = rowConverter(imp.kind, cols, imp.options);
        continue;
      }
      batch.push(convert(line, record));
      if (batch.length >= STAGE_BATCH) {
        // One batch is written while the next is parsed: Postgres and the parser work side by side.
        await inflight;
        inflight = repo.stageRows(db, importId, batch, 0.5 * Math.min(1, read / total));
        inflight.catch(() => undefined); // awaited (and thrown) at the next batch or the end
        batch = [];
      }
    }
    await inflight;
    await repo.stageRows(db, importId, batch, 0.5);
  } catch (err) {
    await inflight.catch(() => undefined);
    const e = err as { code?: string; message?: string; lines?: number };
    if (err instanceof AppError) return { reason: `${err.message}: ${err.details.map((d) => d.message).join('; ')}`, errors: [] };
    if (err instanceof TypeError && /decode|encod/i.test(String(e.message))) return { reason: `the file is not valid ${imp.options.encoding}`, errors: [] };
    if (typeof e.code === 'string' && e.code.startsWith('CSV_')) {
      const line = e.lines ?? 0;
      return { reason: `the file is not valid CSV at line ${line}: ${String(e.message).slice(0, 300)}`, errors: [{ line, error: String(e.message).slice(0, 300) }] };
    }
    throw err;
  }
  if (!convert) return { reason: 'the file is empty', errors: [] };
  const staged = await repo.getImportById(db, importId);
  if (!staged?.rows_read) return { reason: 'the file has a header and no rows', errors: [] };
  return null;
}

type PurchaseRowData = Omit<PurchaseInput, 'items' | 'total'> & { total?: number; item: NonNullable<PurchaseInput['items']>[number] };

/** One order's rows (in line order) as one purchase, or the reason it is skipped whole. */
export function assemble(rows: StagedRow[]): { purchase: PurchaseInput } | { error: string } {
  const bad = rows.find((r) => r.error !== null);
  if (bad) return { error: `purchase ${rows[0]!.key} skipped: line ${bad.line} is rejected (${bad.error})` };
  if (rows.length > MAX_ITEMS) return { error: `purchase ${rows[0]!.key} skipped: it has ${rows.length} item rows (at most ${MAX_ITEMS})` };
  const first = rows[0]!.data as unknown as PurchaseRowData;
  const items = rows.map((r) => (r.data as unknown as PurchaseRowData).item);
  const cents = items.reduce((s, i) => s + Math.round(i.unitPrice * 100) * i.quantity, 0);
  const { item: _i, total, ...head } = first;
  const candidate = { ...head, total: total ?? cents / 100, items };
  const ok = purchaseBody.safeParse(candidate);
  if (!ok.success) return { error: `purchase ${rows[0]!.key} skipped: ${ok.error.issues[0]!.path.join('.')}: ${ok.error.issues[0]!.message}` };
  return { purchase: ok.data };
}

/** Batches of purchases stored side by side (as many as the batch bench's clients): Postgres works on several while the next is assembled. */
const APPLY_CONCURRENCY = 4;

interface Unit {
  seq: number;
  good: PurchaseInput[];
  rows: number;
  rejected: Array<{ line: number; error: string }>;
  first: string;
  last: string;
}

/**
 * Purchases in orderId order, in batches ("units") of at most SERVICE_BATCH purchases, four in
 * flight. Each unit's transaction (the purchase service's own) records the unit's range of
 * orderIds as applied, with its counts; the resume point moves once every unit before it has
 * committed. A job resuming after a crash starts at the resume point and skips the ranges
 * applied beyond it: nothing is stored or counted twice.
 */
async function applyPurchases(db: Db, imp: repo.ImportRow, now: () => Date, hooks: ImportHooks) {
  let readCursor = imp.apply_cursor;
  const skip = imp.done_ranges ?? [];
  let applied = imp.rows_applied;
  const staged = Math.max(1, imp.rows_staged);
  let seq = 0;
  let nextToAdvance = 0;
  const finished = new Map<number, string>(); // seq -> last orderId, of units committed out of order
  const running = new Set<Promise<void>>();
  let failure: unknown = null;
  // The customers' statistics are refreshed after the first batch, then each time the rows
  // applied have grown 8-fold: a few ANALYZEs per import (see repo.analyzeCustomers).
  let analyzeAt = applied + 1;

  const commit = async (u: Unit) => {
    applied += u.rows;
    const record = (conn: Conn, accepted: number, duplicates: number) =>
      repo.recordApplied(conn, imp.id, { cursor: u.last, range: [u.first, u.last], rows: u.rows, accepted, duplicates, rejected: u.rejected, progress: 0.5 + 0.5 * Math.min(1, applied / staged) });
    if (!u.good.length) await record(db, 0, 0);
    else {
      await ingestPurchases(db, imp.workspace_id, u.good, now(), {
        beforeCommit: async (trx, { outcomes }) => {
          const accepted = outcomes.filter((o) => o.created).length;
          await record(trx, accepted, outcomes.length - accepted);
        },
      });
    }
    finished.set(u.seq, u.last);
    let advanced: string | undefined;
    while (finished.has(nextToAdvance)) {
      advanced = finished.get(nextToAdvance)!;
      finished.delete(nextToAdvance++);
    }
    if (advanced !== undefined) await repo.advanceCursor(db, imp.id, advanced);
    if (u.good.length && applied >= analyzeAt) {
      analyzeAt = applied * 8;
      await repo.analyzeCustomers(db);
    }
    await hooks.afterPage?.(applied);
  };
  const dispatch = async (u: Unit) => {
    while (running.size >= APPLY_CONCURRENCY) await Promise.race(running);
    if (failure) throw failure;
    const p: Promise<void> = commit(u).then(
      () => void running.delete(p),
      (err: unknown) => {
        running.delete(p);
        failure ??= err;
      },
    );
    running.add(p);
  };

  try {
    for (;;) {
      const rows = await repo.purchaseRowsAfter(db, imp.id, readCursor, APPLY_PAGE, skip);
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
      // An order of more than a page's rows: rejected whole, its other rows too, without reading them now.
      const oversized = page.length === APPLY_PAGE && orders.length === 1;
      let unit: Unit | null = null;
      for (const rowsOfOrder of orders) {
        const key = rowsOfOrder[0]!.key!;
        unit ??= { seq: seq++, good: [], rows: 0, rejected: [], first: key, last: key };
        const a = oversized ? { error: `purchase ${key} skipped: it has more than ${MAX_ITEMS} item rows` } : assemble(rowsOfOrder);
        if ('purchase' in a) unit.good.push(a.purchase);
        // Rows already rejected at parse are counted; the others of the order are rejected now.
        else for (const r of rowsOfOrder) if (r.error === null) unit.rejected.push({ line: r.line, error: a.error });
        unit.rows += rowsOfOrder.length;
        unit.last = key;
        if (unit.good.length >= SERVICE_BATCH) {
          await dispatch(unit);
          unit = null;
        }
      }
      if (unit && oversized) await skipOrderRows(db, imp.id, unit.last, unit.rejected);
      if (unit) await dispatch(unit);
      readCursor = page[page.length - 1]!.key!;
    }
  } finally {
    await Promise.all(running);
  }
  if (failure) throw failure;
}

/** The rest of an order too large for one page: its remaining rows are rejected too. */
async function skipOrderRows(db: Db, importId: string, key: string, rejected: Array<{ line: number; error: string }>): Promise<void> {
  const rest = await db('import_rows').where({ import_id: importId, key }).whereNull('error').select('line');
  const seen = new Set(rejected.map((r) => r.line));
  for (const r of rest as Array<{ line: number }>) if (!seen.has(r.line)) rejected.push({ line: r.line, error: `purchase ${key} skipped: it has more than ${MAX_ITEMS} item rows` });
}

async function applyCustomers(db: Db, imp: repo.ImportRow, now: () => Date, hooks: ImportHooks) {
  let cursor = Number(imp.apply_cursor ?? 0);
  let applied = imp.rows_applied;
  const staged = Math.max(1, imp.rows_staged);
  for (;;) {
    const rows = await repo.customerRowsAfter(db, imp.id, cursor, SERVICE_BATCH);
    if (!rows.length) return;
    const good: UpsertRow[] = rows.filter((r) => r.error === null).map((r) => {
      const { externalId, ...fields } = r.data as Record<string, unknown>;
      return { externalId: externalId as string, fields };
    });
    const last = rows[rows.length - 1]!.line;
    applied += rows.length;
    const record = (conn: Conn, results: Array<{ created: boolean }>) => {
      const accepted = results.filter((r) => r.created).length;
      return repo.recordApplied(conn, imp.id, { cursor: String(last), rows: rows.length, accepted, duplicates: results.length - accepted, rejected: [], progress: 0.5 + 0.5 * Math.min(1, applied / staged) });
    };
    // The resume point moves in the upsert's own transaction: a crash never counts a page twice.
    if (good.length) await upsertCustomers(db, imp.workspace_id, good, now(), (trx, results) => record(trx, results));
    else await record(db, []);
    cursor = last;
    await hooks.afterPage?.(applied);
  }
}
