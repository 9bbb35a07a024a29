import { bindings } from '../db';
import type { Knex } from 'knex';
import { AppError } from '../errors';
import { normalizeEmail, normalizePhone } from '../normalize';
import type { CustomerRef } from './schema';

export interface NormalRef {
  externalId?: string;
  email?: string;
  phone?: string;
}

/** Normalises a reference; an unreadable phone is a 400 naming the path. */
export function normalizeRef(ref: CustomerRef, path = 'customer'): NormalRef {
  const out: NormalRef = {};
  if (ref.externalId) out.externalId = ref.externalId;
  if (ref.email) out.email = normalizeEmail(ref.email);
  if (ref.phone) {
    const p = normalizePhone(ref.phone);
    if (!p) throw new AppError('validation_failed', 'phone number cannot be normalised to E.164', [{ path: `${path}.phone`, message: 'not a valid phone number; include the country code' }]);
    out.phone = p;
  }
  return out;
}

/**
 * Identity resolution for a whole batch in a handful of statements: externalId, else email,
 * else phone, else a new customer. Creation by externalId is race-free through the unique key;
 * creation by address takes a transaction-scoped advisory lock per address (in one global
 * order, so concurrent batches cannot deadlock) and looks again before inserting.
 * Returns customer ids aligned with `refs`.
 */
export async function resolveCustomers(trx: Knex.Transaction, workspaceId: string, refs: NormalRef[], now: Date): Promise<string[]> {
  const ids: (string | undefined)[] = new Array(refs.length);

  const byExt = new Map<string, NormalRef>();
  for (const r of refs) if (r.externalId && !byExt.has(r.externalId)) byExt.set(r.externalId, r);
  if (byExt.size) {
    const ext = [...byExt.keys()];
    const inserted = await trx.raw(
      `INSERT INTO customers (workspace_id, external_id, email, phone, created_at, updated_at)
       SELECT ?, e, em, ph, ?, ? FROM unnest(?::text[], ?::text[], ?::text[]) AS u(e, em, ph)
       ON CONFLICT (workspace_id, external_id) DO NOTHING RETURNING id`,
      bindings([workspaceId, now, now, ext, ext.map((e) => byExt.get(e)!.email ?? null), ext.map((e) => byExt.get(e)!.phone ?? null)]),
    );
    await createStatsRows(trx, workspaceId, inserted.rows.map((r: { id: string }) => r.id));
    const found = await trx('customers').where('workspace_id', workspaceId).whereIn('external_id', ext).select('id', 'external_id');
    const map = new Map(found.map((f) => [f.external_id as string, f.id as string]));
    refs.forEach((r, i) => {
      if (r.externalId) ids[i] = map.get(r.externalId);
    });
  }

  for (const column of ['email', 'phone'] as const) {
    const pending = refs.map((r, i) => ({ r, i })).filter(({ r, i }) => ids[i] === undefined && (column === 'email' ? r.email : !r.email && r.phone));
    if (!pending.length) continue;
    const values = [...new Set(pending.map(({ r }) => r[column]!))];
    let map = await findByAddress(trx, workspaceId, column, values);
    const missing = values.filter((v) => !map.has(v));
    if (missing.length) {
      await trx.raw(
        `SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(? || ':' || ? || ':' || v, 0) AS h FROM unnest(?::text[]) AS v ORDER BY 1) s`,
        [workspaceId, column, missing],
      );
      const again = await findByAddress(trx, workspaceId, column, missing);
      const toCreate = missing.filter((v) => !again.has(v));
      if (toCreate.length) {
        const rows = await trx('customers')
          .insert(toCreate.map((v) => ({ workspace_id: workspaceId, [column]: v, created_at: now, updated_at: now })))
          .returning(['id', column]);
        await createStatsRows(trx, workspaceId, rows.map((r) => r.id));
        for (const r of rows) again.set(r[column], r.id);
      }
      map = new Map([...map, ...again]);
    }
    for (const { r, i } of pending) ids[i] = map.get(r[column]!);
  }
  return ids.map((id) => {
    if (!id) throw new Error('identity resolution left a reference unresolved');
    return id;
  });
}

/** Where several records share an address, the oldest one is the match. */
async function findByAddress(trx: Knex.Transaction, workspaceId: string, column: 'email' | 'phone', values: string[]) {
  const rows = await trx.raw(
    `SELECT DISTINCT ON (??) ?? AS v, id FROM customers WHERE workspace_id = ? AND ?? = ANY(?::text[]) ORDER BY ??, id`,
    [column, column, workspaceId, column, values, column],
  );
  return new Map<string, string>(rows.rows.map((r: { v: string; id: string }) => [r.v, r.id]));
}

async function createStatsRows(trx: Knex.Transaction, workspaceId: string, ids: string[]) {
  if (!ids.length) return;
  await trx.raw(
    `INSERT INTO customer_stats (customer_id, workspace_id) SELECT id, ? FROM unnest(?::bigint[]) AS id ON CONFLICT DO NOTHING`,
    [workspaceId, ids],
  );
}
