import { TextDecoder } from 'node:util';
import { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import type { Knex } from 'knex';
import type { Db } from '../db';

type Conn = Db | Knex.Transaction;
import type { Logger } from '../logger';
import { AppError } from '../errors';
import { upsertCustomers, UpsertRow } from '../customers/repo';
import * as repo from './repo';
import { Columns, resolveHeader, rowConverter, StagedRow } from './rows';
import { ApplyHooks, applyPurchases, assemble } from './apply-purchases';

/** Rows staged per statement. */
const STAGE_BATCH = 2000;
/** Characters of the file handed to the CSV parser at a time. */
const PARSE_SLICE = 64 * 1024;
/** Customers per call of the customer service: the batch API's own maximum. */
const SERVICE_BATCH = 1000;

export type ImportHooks = ApplyHooks;
export { assemble };

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
  const t0 = performance.now();
  let parseMs = 0;
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
    parseMs = performance.now() - t0;
  }
  if (imp.kind === 'purchases') await applyPurchases(db, imp, now, hooks);
  else await applyCustomers(db, imp, now, hooks);
  await repo.finish(db, importId, now());
  const done = (await repo.getImportById(db, importId))!;
  const ms = Math.round(performance.now() - t0);
  logger.info({ importId, accepted: done.accepted, duplicates: done.duplicates, rejected: done.rejected, ms, parseMs: Math.round(parseMs) }, 'import done');
  return { workspaceId: imp.workspace_id, kind: imp.kind, status: 'done', accepted: done.accepted, duplicates: done.duplicates, rejected: done.rejected };
}

/** Parses and stages the file; returns why the file as a whole cannot be imported, or null. */
async function parsePhase(db: Db, importId: string, imp: repo.ImportRow): Promise<{ reason: string; errors: Array<{ line: number; error: string }> } | null> {
  const total = Number(imp.bytes) || 1;
  const decoder = new TextDecoder(imp.options.encoding, { fatal: true });
  let read = 0;
  // The parser gets the text in small slices, one at a time: csv-parse turns a whole slice into
  // records before it looks at backpressure, and Readable.from would read ahead 16 pieces. With a
  // 1 MB piece that was ~12k records buffered at once, a large share of the parse's memory peak.
  async function* text() {
    for await (const buf of repo.readChunks(db, importId)) {
      read += buf.length;
      const s = decoder.decode(buf, { stream: true });
      for (let i = 0; i < s.length; i += PARSE_SLICE) yield s.slice(i, i + PARSE_SLICE);
    }
    yield decoder.decode();
  }
  const parser = Readable.from(text(), { highWaterMark: 1 }).pipe(parse({ relax_column_count: true, skip_empty_lines: true, info: true, bom: true, max_record_size: 1024 * 1024 }));
  let convert: ((line: number, record: string[]) => StagedRow) | null = null;
  let drift = 0;
  let batch: StagedRow[] = [];
  let inflight: Promise<void> = Promise.resolve();
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      // info.lines is the line the record ends on; a quoted field may span lines. csv-parse counts
      // a CRLF inside a quoted field as two lines (its \r and its \n), so its count drifts ahead by
      // one for each; we take the drift back, and count the record's own breaks as \n, \r\n or \r.
      const own = lineBreaks(record);
      drift += own.crlf;
      const line = info.lines - drift - own.breaks;
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

/** The line breaks inside a record's fields (\n, \r\n or a lone \r each one), and how many were \r\n. */
export function lineBreaks(record: string[]): { breaks: number; crlf: number } {
  let breaks = 0;
  let crlf = 0;
  for (const f of record) {
    const first = Math.min(f.indexOf('\n') >>> 0, f.indexOf('\r') >>> 0); // -1 >>> 0 is 2^32 - 1
    for (let i = first; i < f.length; i++) {
      const c = f.charCodeAt(i);
      if (c === 10) breaks++;
      else if (c === 13) {
        breaks++;
        if (f.charCodeAt(i + 1) === 10) {
          crlf++;
          i++;
        }
      }
    }
  }
  return { breaks, crlf };
}
