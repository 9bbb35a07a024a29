import type { Knex } from 'knex';
import { bindings } from '../db';
import { normalizeEmail } from '../normalize';

/**
 * The suppression list holds only a keyed hash of the normalised address: HMAC-SHA256 under the
 * installation's key, computed in SQL by hark_address_hash() (migration 0012), so an erased
 * customer's address stays blocked without being stored, and the entries cannot be reversed by
 * hashing every phone number. Entries written before 0012 whose address hark no longer held
 * are bare SHA-256 (marked `legacy`); every check matches either form (suppressedSql). Callers pass normalised
 * addresses (lower-cased email, E.164 phone); emails are lower-cased here again to be safe.
 */
export type SuppressionChannel = 'email' | 'sms';

type Conn = Knex | Knex.Transaction;

const norm = (channel: SuppressionChannel, address: string) => (channel === 'email' ? normalizeEmail(address) : address.trim());

/** SQL: the hashes an entry for the normalised address `expr` may hold (keyed; bare from before 0012). */
export const addressHashesSql = (expr: string) => `(hark_address_hash(${expr}), sha256(convert_to(${expr}, 'UTF8')))`;

/**
 * SQL: the normalised address `addr` is on the list of workspace `ws` and channel `ch` (SQL
 * expressions, each used twice: no `?` in them). The bare SHA-256 probe runs only while the list
 * has legacy entries at all (an uncorrelated EXISTS on a partial index: evaluated once per
 * query), so the per-row cost is one keyed hash and one index probe once they are gone.
 */
export const suppressedSql = (ws: string, ch: string, addr: string) =>
  `(EXISTS (SELECT 1 FROM suppressions sx WHERE sx.workspace_id = ${ws} AND sx.channel = ${ch} AND sx.address_hash = hark_address_hash(${addr}))
    OR (EXISTS (SELECT 1 FROM suppressions sl WHERE sl.legacy AND sl.workspace_id = ${ws})
        AND EXISTS (SELECT 1 FROM suppressions sx WHERE sx.workspace_id = ${ws} AND sx.channel = ${ch} AND sx.address_hash = sha256(convert_to(${addr}, 'UTF8')))))`;

/** Which of these addresses are suppressed: one indexed lookup for the whole batch. */
export async function suppressedSet(db: Conn, workspaceId: string, channel: SuppressionChannel, addresses: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (!addresses.length) return out;
  const byNorm = new Map<string, string[]>();
  for (const a of addresses) {
    const n = norm(channel, a);
    const list = byNorm.get(n);
    if (list) list.push(a);
    else byNorm.set(n, [a]);
  }
  const { rows } = await db.raw(
    `SELECT a FROM unnest(?::text[]) AS a, (SELECT ?::uuid AS ws, ?::text AS ch) p WHERE ${suppressedSql('p.ws', 'p.ch', 'a')}`,
    bindings([[...byNorm.keys()], workspaceId, channel]),
  );
  for (const r of rows as Array<{ a: string }>) for (const a of byNorm.get(r.a) ?? []) out.add(a);
  return out;
}

export async function isSuppressed(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string): Promise<boolean> {
  return (await suppressedSet(db, workspaceId, channel, [address])).size > 0;
}

/**
 * Adds an address under its keyed hash; an existing entry keeps its first reason. A bare entry
 * from before 0012 for the same address is re-keyed on the way (it keeps its reason).
 */
export async function suppress(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string, reason: string): Promise<void> {
  const a = norm(channel, address);
  await db.raw(
    `WITH legacy AS (
       DELETE FROM suppressions WHERE workspace_id = ? AND channel = ? AND legacy AND address_hash = sha256(convert_to(?::text, 'UTF8')) RETURNING reason
     )
     INSERT INTO suppressions (workspace_id, channel, address_hash, reason)
     SELECT ?, ?, hark_address_hash(?::text), coalesce((SELECT reason FROM legacy LIMIT 1), ?)
     ON CONFLICT (workspace_id, channel, address_hash) DO NOTHING`,
    [workspaceId, channel, a, workspaceId, channel, a, reason],
  );
}

/**
 * Removes an address, but only when it was suppressed for one of these reasons: START undoes
 * a STOP ('sms_stop'), never a carrier's 'invalid_number' or an erasure.
 */
export async function unsuppress(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string, reasons: string[]): Promise<number> {
  if (!reasons.length) return 0;
  const a = norm(channel, address);
  const { rowCount } = await db.raw(
    `DELETE FROM suppressions WHERE workspace_id = ? AND channel = ? AND address_hash IN ${addressHashesSql('?::text')} AND reason = ANY(?::text[])`,
    bindings([workspaceId, channel, a, a, reasons]),
  );
  return rowCount ?? 0;
}
