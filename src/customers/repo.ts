import type { Knex } from 'knex';
import type { Db } from '../db';
import { bindings, toMoney } from '../db';
import { purchaseView } from '../purchases/repo';
import { AppError, notFound } from '../errors';
import { withRetry } from '../tx';
import { resolveCustomers } from './identity';
import { normalizeEmail, normalizePhone } from '../normalize';
import { addressHashesSql, suppress } from '../suppressions/repo';
import type { CustomerFields } from './schema';
import { runErasureHooks } from './erasure';

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

export interface UpsertRow {
  externalId: string;
  fields: CustomerFields;
}

/**
 * Upserts customers by externalId in one transaction. Identity goes through resolveCustomers, so
 * a PUT for a new externalId takes over the customer a purchase created earlier with the same
 * email (or phone) and no externalId. Consent timestamps move only when the consent value
 * changes; attributes merge key by key; null clears a field. Fields are normalised (and phones
 * rejected) before anything is written: call toColumns first for per-row errors.
 */
export async function upsertCustomers(
  db: Db,
  workspaceId: string,
  rows: UpsertRow[],
  now: Date,
  /** Runs in the upsert's transaction before it commits (an import records its progress there). */
  beforeCommit?: (trx: Knex.Transaction, results: Array<{ id: string; created: boolean }>) => Promise<void>,
): Promise<Array<{ id: string; created: boolean }>> {
  const cols = rows.map((r) => toColumns(r.fields));
  return withRetry(db, async (trx) => {
    const refs = rows.map((r, i) => ({
      externalId: r.externalId,
      email: typeof cols[i]!.email === 'string' ? (cols[i]!.email as string) : undefined,
      phone: typeof cols[i]!.phone === 'string' ? (cols[i]!.phone as string) : undefined,
    }));
    const { ids, created } = await resolveCustomers(trx, workspaceId, refs, now);
    for (const [i, r] of rows.entries()) {
      const set: Record<string, unknown> = { ...cols[i], updated_at: now };
      for (const consent of ['email_consent', 'sms_consent'] as const) {
        if (cols[i]![consent] === undefined) continue;
        set[`${consent}_at`] = trx.raw(`CASE WHEN ${consent} IS DISTINCT FROM ? THEN ?::timestamptz ELSE ${consent}_at END`, [cols[i]![consent] as string, now]);
      }
      if (r.fields.attributes) set.attributes = trx.raw('attributes || ?::jsonb', [JSON.stringify(r.fields.attributes)]);
      await trx('customers').where({ id: ids[i], workspace_id: workspaceId }).update(set);
    }
    const results = ids.map((id, i) => ({ id, created: created[i]! }));
    await beforeCommit?.(trx, results);
    return results;
  });
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
 * Erasure: the customer row goes and, by cascade, purchases, items, refunds, events and stats;
 * the addresses and send-time snapshots on its messages are blanked (the message rows stay for
 * campaign counts, without a customer), and so are provider errors that quote them. The addresses
 * stay blocked as keyed-hash entries on the suppression list, so a customer re-created with the
 * same address is still never messaged. Other domains blank their own copies through onErasure
 * hooks (click URLs in message events, externalIds in webhook payloads), in the same transaction.
 */
export async function eraseCustomer(db: Db, workspaceId: string, externalId: string): Promise<void> {
  await withRetry(db, async (trx) => {
    const c = await trx('customers').where({ workspace_id: workspaceId, external_id: externalId }).forUpdate().first('id', 'email', 'phone');
    if (!c) throw notFound('customer');
    if (c.email) await suppress(trx, workspaceId, 'email', c.email, 'erased');
    if (c.phone) await suppress(trx, workspaceId, 'sms', c.phone, 'erased');
    await runErasureHooks(trx, workspaceId, c.id);
    // After the hooks: they find the customer's messages by customer_id, as this leaves them.
    const quoted = [c.email, c.phone, externalId].filter(Boolean) as string[];
    await trx('messages')
      .where({ workspace_id: workspaceId, customer_id: c.id })
      .update({ address: null, snapshot: '{}', error: trx.raw(`CASE WHEN error IS NULL THEN NULL ELSE ${quoted.map(() => 'replace(').join('')}error${quoted.map(() => `, ?, '[erased]')`).join('')} END`, quoted) });
    await trx('customers').where({ id: c.id }).del();
  });
}

export { onErasure } from './erasure';

/** Which channels of this customer's addresses are on the suppression list. */
export async function suppressionOf(db: Db, workspaceId: string, c: { email?: string | null; phone?: string | null }) {
  const wanted = [c.email && { channel: 'email', a: normalizeEmail(c.email) }, c.phone && { channel: 'sms', a: c.phone.trim() }].filter(Boolean) as Array<{ channel: string; a: string }>;
  const rows = wanted.length
    ? (
        await db.raw(
          `SELECT x.channel, x.reason, x.created_at FROM unnest(?::text[], ?::text[]) AS w(channel, a)
             JOIN suppressions x ON x.workspace_id = ? AND x.channel = w.channel AND x.address_hash IN ${addressHashesSql('w.a')}`,
          bindings([wanted.map((w) => w.channel), wanted.map((w) => w.a), workspaceId]),
        )
      ).rows
    : [];
  return (rows as Array<{ channel: string; reason: string; created_at: Date }>).map((r) => ({ channel: r.channel as string, reason: r.reason as string, createdAt: new Date(r.created_at).toISOString() }));
}

const iso = (d: unknown) => (d ? new Date(d as string).toISOString() : null);

/** Everything held about one customer besides the profile, in the API's shapes. */
export async function exportCustomer(db: Db, workspaceId: string, customer: { id: string; email?: string | null; phone?: string | null }) {
  const customerId = customer.id;
  const [purchases, items, refunds, events, messages, suppressions] = await Promise.all([
    db('purchases').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('occurred_at'),
    db('purchase_items').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('id'),
    db('refunds as r').join('purchases as p', (j) => j.on('p.id', 'r.purchase_id').andOn('p.workspace_id', 'r.workspace_id')).where({ 'p.workspace_id': workspaceId, 'p.customer_id': customerId }).orderBy('r.id').select('r.*', 'p.order_id'),
    db('events').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('occurred_at'),
    db('messages').where({ workspace_id: workspaceId, customer_id: customerId }).orderBy('id'),
    suppressionOf(db, workspaceId, customer),
  ]);
  const itemsOf = new Map<string, Record<string, any>[]>();
  for (const it of items) itemsOf.set(String(it.purchase_id), [...(itemsOf.get(String(it.purchase_id)) ?? []), it]);
  return {
    purchases: purchases.map((p) => purchaseView(p, itemsOf.get(String(p.id)) ?? [])),
    refunds: refunds.map((r) => ({ orderId: r.order_id, refundId: r.refund_id, amount: toMoney(r.amount), createdAt: iso(r.created_at) })),
    events: events.map((e) => ({ id: String(e.id), eventId: e.event_id, type: e.type, channel: e.channel, device: e.device, occurredAt: iso(e.occurred_at), properties: e.properties })),
    messages: messages.map((m) => ({
      id: String(m.id), channel: m.channel, address: m.address, status: m.status, campaignId: m.campaign_id, automationId: m.automation_id,
      createdAt: iso(m.created_at), sentAt: iso(m.sent_at), openedAt: iso(m.opened_at), clickedAt: iso(m.clicked_at),
    })),
    suppressions,
  };
}
