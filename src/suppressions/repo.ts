import type { Knex } from 'knex';
import { bindings } from '../db';
import { addressHash, normalizeEmail } from '../normalize';

/**
 * The suppression list holds only SHA-256 of the normalised address (see 0001), so an erased
 * customer's address stays blocked without being stored. Callers pass normalised addresses
 * (lower-cased email, E.164 phone); emails are lower-cased here again to be safe.
 */
export type SuppressionChannel = 'email' | 'sms';

type Conn = Knex | Knex.Transaction;

const norm = (channel: SuppressionChannel, address: string) => (channel === 'email' ? normalizeEmail(address) : address.trim());
export const suppressionHash = (channel: SuppressionChannel, address: string): Buffer => addressHash(norm(channel, address));

/** Which of these addresses are suppressed: one indexed lookup for the whole batch. */
export async function suppressedSet(db: Conn, workspaceId: string, channel: SuppressionChannel, addresses: string[]): Promise<Set<string>> {
  const out = new Set<string>();
  if (!addresses.length) return out;
  const byHash = new Map<string, string[]>();
  for (const a of addresses) {
    const h = suppressionHash(channel, a).toString('hex');
    const list = byHash.get(h);
    if (list) list.push(a);
    else byHash.set(h, [a]);
  }
  // Hashes travel as hex text and are decoded in SQL: a text[] binding is unambiguous in pg.
  const { rows } = await db.raw(
    `SELECT encode(address_hash, 'hex') AS h FROM suppressions
      WHERE workspace_id = ? AND channel = ? AND address_hash = ANY(ARRAY(SELECT decode(x, 'hex') FROM unnest(?::text[]) AS x))`,
    bindings([workspaceId, channel, [...byHash.keys()]]),
  );
  for (const r of rows as Array<{ h: string }>) for (const a of byHash.get(r.h) ?? []) out.add(a);
  return out;
}

export async function isSuppressed(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string): Promise<boolean> {
  return (await suppressedSet(db, workspaceId, channel, [address])).size > 0;
}

/** Adds an address; an existing entry keeps its first reason. */
export async function suppress(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string, reason: string): Promise<void> {
  await db('suppressions')
    .insert({ workspace_id: workspaceId, channel, address_hash: suppressionHash(channel, address), reason })
    .onConflict(['workspace_id', 'channel', 'address_hash'])
    .ignore();
}

/**
 * Removes an address, but only when it was suppressed for one of these reasons: START undoes
 * a STOP ('sms_stop'), never a carrier's 'invalid_number' or an erasure.
 */
export async function unsuppress(db: Conn, workspaceId: string, channel: SuppressionChannel, address: string, reasons: string[]): Promise<number> {
  if (!reasons.length) return 0;
  return db('suppressions')
    .where({ workspace_id: workspaceId, channel, address_hash: suppressionHash(channel, address) })
    .whereIn('reason', reasons)
    .del();
}
