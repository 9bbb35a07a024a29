import type { Knex } from 'knex';
import type { Db } from '../db';
import { AppError, notFound } from '../errors';
import { addressHash, normalizeEmail, normalizePhone } from '../normalize';
import type { CustomerFields } from './schema';

const COLUMN: Record<string, string> = {
  email: 'email', phone: 'phone', firstName: 'first_name', lastName: 'last_name', birthDate: 'birth_date',
  gender: 'gender', city: 'city', region: 'region', country: 'country', postalCode: 'postal_code', timezone: 'timezone',
  emailConsent: 'email_consent', smsConsent: 'sms_consent',
};

/** Normalises the profile fields to columns; a phone that is not a real number is a 400. */
export function toColumns(fields: CustomerFields, path = 'phone'): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const [k, col] of Object.entries(COLUMN)) {
    const v = (fields as Record<string, unknown>)[k];
    if (v !== undefined) row[col] = v;
  }
  if (typeof fields.email === 'string') row.email = normalizeEmail(fields.email);
  if (typeof fields.phone === 'string') {
    const e164 = normalizePhone(fields.phone, fields.country ?? undefined);
    if (!e164) throw new AppError('validation_failed', 'phone number cannot be normalised to E.164', [{ path, message: 'not a valid phone number; include the country code, e.g. +15125550100' }]);
    row.phone = e164;
  }
  return row;
}

export interface UpsertResult {
  id: string;
  created: boolean;
}

/**
 * One statement whatever the race: ON CONFLICT on (workspace, externalId). Consent timestamps
 * move only when the consent value changes; attributes merge key by key.
 */
export async function upsertCustomer(db: Db | Knex.Transaction, workspaceId: string, externalId: string, fields: CustomerFields, now: Date): Promise<UpsertResult> {
  const cols = toColumns(fields);
  const insert: Record<string, unknown> = { workspace_id: workspaceId, external_id: externalId, ...cols, attributes: JSON.stringify(fields.attributes ?? {}), created_at: now, updated_at: now };
  if (cols.email_consent) insert.email_consent_at = now;
  if (cols.sms_consent) insert.sms_consent_at = now;
  const merge: Record<string, unknown> = { updated_at: now };
  for (const col of Object.keys(cols)) merge[col] = db.raw('EXCLUDED.??', [col]);
  if (cols.email_consent) merge.email_consent_at = db.raw('CASE WHEN customers.email_consent IS DISTINCT FROM EXCLUDED.email_consent THEN EXCLUDED.email_consent_at ELSE customers.email_consent_at END');
  if (cols.sms_consent) merge.sms_consent_at = db.raw('CASE WHEN customers.sms_consent IS DISTINCT FROM EXCLUDED.sms_consent THEN EXCLUDED.sms_consent_at ELSE customers.sms_consent_at END');
  if (fields.attributes) merge.attributes = db.raw('customers.attributes || EXCLUDED.attributes');
  const [row] = await db('customers')
    .insert(insert)
    .onConflict(['workspace_id', 'external_id'])
    .merge(merge)
    .returning([db.raw('id'), db.raw('(xmax = 0) AS created')]);
  if (row.created) await db('customer_stats').insert({ customer_id: row.id, workspace_id: workspaceId }).onConflict('customer_id').ignore();
  return { id: row.id, created: row.created };
}

export async function findByExternalId(db: Db | Knex.Transaction, workspaceId: string, externalId: string) {
  return db('customers').where({ workspace_id: workspaceId, external_id: externalId }).first();
}

export async function requireByExternalId(db: Db | Knex.Transaction, workspaceId: string, externalId: string) {
  const row = await findByExternalId(db, workspaceId, externalId);
  if (!row) throw notFound('customer');
  return row;
}

export async function getStatsRow(db: Db | Knex.Transaction, customerId: string) {
  return db('customer_stats').where({ customer_id: customerId }).first();
}

/**
 * Erasure: the customer row goes and, by cascade, purchases, items, events and stats. The
 * addresses stay blocked as SHA-256 entries on the suppression list.
 */
export async function eraseCustomer(db: Db, workspaceId: string, externalId: string): Promise<void> {
  await db.transaction(async (trx) => {
    const c = await trx('customers').where({ workspace_id: workspaceId, external_id: externalId }).forUpdate().first('id', 'email', 'phone');
    if (!c) throw notFound('customer');
    const entries = [
      c.email && { workspace_id: workspaceId, channel: 'email', address_hash: addressHash(c.email), reason: 'erased' },
      c.phone && { workspace_id: workspaceId, channel: 'sms', address_hash: addressHash(c.phone), reason: 'erased' },
    ].filter(Boolean);
    if (entries.length) await trx('suppressions').insert(entries).onConflict(['workspace_id', 'channel', 'address_hash']).ignore();
    for (const hook of erasureHooks) await hook(trx, workspaceId, c.id);
    await trx('customers').where({ id: c.id }).del();
  });
}

/** Later domains (messages) register what they must blank for an erased customer. */
type ErasureHook = (trx: Knex.Transaction, workspaceId: string, customerId: string) => Promise<void>;
const erasureHooks: ErasureHook[] = [];
export const onErasure = (hook: ErasureHook) => erasureHooks.push(hook);

export async function exportCustomer(db: Db, workspaceId: string, customerId: string) {
  const [purchases, items, refunds, events, suppressed] = await Promise.all([
    db('purchases').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('occurred_at'),
    db('purchase_items').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('id'),
    db('refunds as r').join('purchases as p', 'p.id', 'r.purchase_id').where({ 'p.workspace_id': workspaceId, 'p.customer_id': customerId }).select('r.*', 'p.order_id'),
    db('events').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('occurred_at'),
    db('customers as c')
      .join('suppressions as s', function () {
        this.on('s.workspace_id', 'c.workspace_id').andOn(db.raw("((s.channel = 'email' AND s.address_hash = digest(c.email, 'sha256')) OR (s.channel = 'sms' AND s.address_hash = digest(c.phone, 'sha256')))"));
      })
      .where('c.id', customerId)
      .select('s.channel', 's.reason', 's.created_at'),
  ]);
  return { purchases, items, refunds, events, suppressions: suppressed };
}
