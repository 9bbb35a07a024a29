import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Knex } from 'knex';
import type { Client as PgClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type { Db } from '../db';
import { bindings } from '../db';
import { pgArray } from '../purchases/pg-array';
import type { StagedRow } from './rows';
import type { ImportKind, ImportOptions } from './schema';

/** How many errors an import keeps, by line (API.md: the first 100). */
export const ERRORS_KEPT = 100;

export interface ImportRow {
  id: string;
  workspace_id: string;
  kind: ImportKind;
  status: 'uploading' | 'queued' | 'running' | 'done' | 'failed';
  phase: 'parse' | 'apply';
  options: ImportOptions;
  bytes: string;
  chunks: number;
  rows_read: number;
  rows_staged: number;
  rows_applied: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  progress: number;
  apply_cursor: string | null;
  /** Batches committed past apply_cursor: [first, last] orderId, and the lane (absent: every lane). */
  done_ranges: Array<[string, string] | [string, string, number]>;
  errors: Array<{ line: number; error: string }>;
  failure: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

export async function createImport(db: Db, workspaceId: string, kind: ImportKind, options: ImportOptions, now: Date): Promise<string> {
  const [row] = await db('imports').insert({ workspace_id: workspaceId, kind, status: 'uploading', options: JSON.stringify(options), created_at: now }).returning('id');
  return row.id as string;
}

export async function appendChunk(db: Db, importId: string, seq: number, data: Buffer): Promise<void> {
  await db('import_chunks').insert({ import_id: importId, seq, data });
}

/** The upload is complete: the worker may take it. */
export async function markQueued(db: Db, importId: string, bytes: number, chunks: number): Promise<void> {
  await db('imports').where({ id: importId, status: 'uploading' }).update({ status: 'queued', bytes, chunks });
}

/** An upload refused half-way leaves nothing behind (its chunks go by cascade). */
export async function dropImport(db: Db, importId: string): Promise<void> {
  await db('import_rows').where({ import_id: importId }).del();
  await db('imports').where({ id: importId }).del();
}

export async function getImport(db: Db | Knex.Transaction, workspaceId: string, id: string): Promise<ImportRow | undefined> {
  return db('imports').where({ workspace_id: workspaceId, id }).first();
}

export async function getImportById(db: Db, id: string): Promise<ImportRow | undefined> {
  return db('imports').where({ id }).first();
}

export async function listImports(db: Db, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<ImportRow[]> {
  const q = db('imports').where({ workspace_id: workspaceId }).whereNot('status', 'uploading');
  if (after) q.andWhereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit + 1);
}

/** The file's pieces, one at a time, in order: never the whole file in memory. */
export async function* readChunks(db: Db, importId: string): AsyncGenerator<Buffer> {
  for (let seq = 0; ; seq++) {
    const row = await db('import_chunks').where({ import_id: importId, seq }).first('data');
    if (!row) return;
    yield row.data as Buffer;
  }
}

/** A job (re)starting the parse phase: whatever an earlier attempt staged goes. */
export async function startParse(db: Db, importId: string, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('import_rows').where({ import_id: importId }).del();
    await trx('imports')
      .where({ id: importId })
      .update({ status: 'running', phase: 'parse', rows_read: 0, rows_staged: 0, rows_applied: 0, accepted: 0, duplicates: 0, rejected: 0, progress: 0, apply_cursor: null, done_ranges: '[]', started_at: trx.raw('coalesce(started_at, ?)', [now]) });
  });
}

/** A value in COPY's text format: \N for null, backslash escapes for what would end a field or row. */
const COPY_ESC: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };
const copyValue = (v: string | null) => (v === null ? '\\N' : v.replace(/[\\\n\r\t]/g, (c) => COPY_ESC[c]!));

/** Parsed rows as COPY text (one string: a batch is a few hundred KB). */
export function copyText(importId: string, rows: StagedRow[]): string {
  let out = '';
  for (const r of rows) out += `${importId}\t${r.line}\t${copyValue(r.key)}\t${r.data ? copyValue(JSON.stringify(r.data)) : '\\N'}\t${copyValue(r.error)}\n`;
  return out;
}

/**
 * Stages parsed rows and moves the counters in one transaction. The rows go by COPY
 * (pg-copy-streams): no parameter arrays to build and escape, and Postgres reads them in one
 * pass (the unnest INSERT's arrays were the parse's largest allocations).
 */
export async function stageRows(db: Db, importId: string, rows: StagedRow[], progress: number): Promise<void> {
  if (!rows.length) return;
  const bad = rows.filter((r) => r.error !== null).length;
  const text = copyText(importId, rows);
  const conn = (await db.client.acquireConnection()) as PgClient;
  try {
    await conn.query('BEGIN');
    await pipeline(Readable.from([text]), conn.query(copyFrom('COPY import_rows (import_id, line, key, data, error) FROM STDIN')));
    await conn.query('UPDATE imports SET rows_read = rows_read + $1, rows_staged = rows_staged + $1, rejected = rejected + $2, progress = $3 WHERE id = $4', [rows.length, bad, progress, importId]);
    await conn.query('COMMIT');
  } catch (err) {
    await conn.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await db.client.releaseConnection(conn);
  }
}

export async function startApply(db: Db, importId: string): Promise<void> {
  await db('imports').where({ id: importId }).update({ phase: 'apply', apply_cursor: null, done_ranges: '[]', rows_applied: 0 });
  // Statistics of the rows just staged, as after any bulk load: planned from an empty table's, each
  // page was a bitmap scan of every remaining row and a sort (0.2 s a page at 200k rows, growing
  // with the file), instead of a walk of import_rows_key that stops at the page.
  await db.raw('ANALYZE import_rows');
}

const parsed = (rows: Array<{ line: number; key: string | null; data: string | null; error: string | null }>): StagedRow[] =>
  rows.map((r) => ({ line: r.line, key: r.key, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>), error: r.error }));

/** Whether the import's staged rows are there (a Postgres crash empties the unlogged table). */
export async function hasStagedRows(db: Db, importId: string): Promise<boolean> {
  return !!(await db('import_rows').where({ import_id: importId }).first('line'));
}

/** The next rows of a purchase import past `after` (an orderId), in (orderId, line) order. */
export async function purchaseRowsAfter(db: Db, importId: string, after: string | null, limit: number): Promise<StagedRow[]> {
  const q = db('import_rows').where({ import_id: importId }).whereNotNull('key');
  if (after !== null) q.andWhere('key', '>', after);
  return parsed(await q.orderBy([{ column: 'key' }, { column: 'line' }]).limit(limit).select('line', 'key', 'data', 'error'));
}

/**
 * Of these orderIds, those inside a range of `ranges`, with the lanes that applied them (-1: a
 * range of every lane). Compared in SQL, in the collation the pages are ordered by.
 */
export async function coveredKeys(db: Db, keys: string[], ranges: ImportRow['done_ranges']): Promise<Map<string, Set<number>>> {
  const { rows } = await db.raw(
    `SELECT u.k, coalesce((r.v->>2)::int, -1) AS lane FROM unnest(?::text[]) AS u(k)
     JOIN jsonb_array_elements(?::jsonb) AS r(v) ON u.k >= r.v->>0 AND u.k <= r.v->>1`,
    bindings([pgArray(keys), JSON.stringify(ranges)]),
  );
  const out = new Map<string, Set<number>>();
  for (const r of rows as Array<{ k: string; lane: number }>) {
    if (!out.has(r.k)) out.set(r.k, new Set());
    out.get(r.k)!.add(r.lane);
  }
  return out;
}

/** The next valid rows of a customer import past line `after`, in file order. */
export async function customerRowsAfter(db: Db, importId: string, after: number, limit: number): Promise<StagedRow[]> {
  return parsed(await db('import_rows').where({ import_id: importId }).andWhere('line', '>', after).orderBy('line').limit(limit).select('line', 'key', 'data', 'error'));
}

export interface Applied {
  /** Customers: the line up to which all is applied. Purchases: the batch's [first, last] orderId (see advanceCursor). */
  cursor: string;
  range?: [string, string, number];
  rows: number;
  accepted: number;
  duplicates: number;
  /** Rows rejected now (rows of a purchase skipped for another row's fault), with their reasons. */
  rejected: Array<{ line: number; error: string }>;
  progress: number;
}

/** One applied page: counters, resume point and the reasons of rows rejected at this stage. */
export async function recordApplied(conn: Db | Knex.Transaction, importId: string, a: Applied): Promise<void> {
  // Within the caller's transaction when given one (a savepoint), else its own.
  await conn.transaction(async (trx) => {
    if (a.rejected.length) {
      await trx.raw(
        `UPDATE import_rows r SET error = v.e FROM unnest(?::int[], ?::text[]) AS v(l, e) WHERE r.import_id = ? AND r.line = v.l`,
        bindings([pgArray(a.rejected.map((x) => x.line)), pgArray(a.rejected.map((x) => x.error)), importId]),
      );
    }
    await trx('imports')
      .where({ id: importId })
      .update({
        ...(a.range ? { done_ranges: trx.raw('done_ranges || ?::jsonb', [JSON.stringify([a.range])]) } : { apply_cursor: a.cursor }),
        rows_applied: trx.raw('rows_applied + ?', [a.rows]), accepted: trx.raw('accepted + ?', [a.accepted]),
        duplicates: trx.raw('duplicates + ?', [a.duplicates]), rejected: trx.raw('rejected + ?', [a.rejected.length]), progress: a.progress,
      });
  });
}

/** Every batch up to `cursor` is applied: the resume point moves there, and the ranges it covers go. */
export async function advanceCursor(db: Db, importId: string, cursor: string): Promise<void> {
  await db('imports')
    .where({ id: importId })
    .update({ apply_cursor: cursor, done_ranges: db.raw(`(SELECT coalesce(jsonb_agg(r), '[]'::jsonb) FROM jsonb_array_elements(done_ranges) r WHERE r->>1 > ?)`, [cursor]) });
}

/** Done: the first errors by line move onto the imports row, the staged rows and the file go. */
export async function finish(db: Db, importId: string, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    const errors = await trx('import_rows').where({ import_id: importId }).whereNotNull('error').orderBy('line').limit(ERRORS_KEPT).select('line', 'error');
    await trx('imports').where({ id: importId }).update({ status: 'done', progress: 1, errors: JSON.stringify(errors), finished_at: now });
    await trx('import_rows').where({ import_id: importId }).del();
    await trx('import_chunks').where({ import_id: importId }).del();
  });
}

/** Failed as a whole (a file that cannot be read): nothing was applied; staged rows and the file go. */
export async function fail(db: Db, importId: string, reason: string, errors: Array<{ line: number; error: string }>, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    await trx('imports').where({ id: importId }).update({ status: 'failed', failure: reason, errors: JSON.stringify(errors), finished_at: now });
    await trx('import_rows').where({ import_id: importId }).del();
    await trx('import_chunks').where({ import_id: importId }).del();
  });
}

export async function workspaceTimezone(db: Db, workspaceId: string): Promise<string> {
  const row = await db('workspaces').where({ id: workspaceId }).first('timezone');
  return (row?.timezone as string | undefined) ?? 'UTC';
}

/** A job out of attempts: failed with its reason, keeping what it applied (counted) so far. */
export async function failImport(db: Db, importId: string, reason: string, now: Date): Promise<void> {
  await db.transaction(async (trx) => {
    const errors = await trx('import_rows').where({ import_id: importId }).whereNotNull('error').orderBy('line').limit(ERRORS_KEPT).select('line', 'error');
    await trx('imports').where({ id: importId }).whereIn('status', ['queued', 'running']).update({ status: 'failed', failure: reason, errors: JSON.stringify(errors), finished_at: now });
  });
}
