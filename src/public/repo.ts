import type { Knex } from 'knex';
import { bindings } from '../db';

type Conn = Knex | Knex.Transaction;

export interface MessageRef {
  id: string;
  workspace_id: string;
  campaign_id: string | null;
  automation_id: string | null;
  customer_id: string | null;
  channel: 'email' | 'sms';
  address: string | null;
  status: string;
}

const REF_COLUMNS = ['id', 'workspace_id', 'campaign_id', 'automation_id', 'customer_id', 'channel', 'address', 'status'];

export async function findMessage(db: Conn, id: string): Promise<MessageRef | undefined> {
  return db('messages').where({ id }).first(REF_COLUMNS);
}

/** Sets one engagement timestamp if it is still empty; true when this call set it (first time). */
export async function markFirst(db: Conn, id: string, column: 'opened_at' | 'clicked_at' | 'unsubscribed_at', now: Date): Promise<boolean> {
  // column comes from the literal union above, never from input.
  const n = await db('messages').where({ id }).whereNull(column).update({ [column]: now });
  return n > 0;
}

export async function customerAddress(db: Conn, workspaceId: string, customerId: string, channel: 'email' | 'sms'): Promise<string | null> {
  const row = await db('customers').where({ workspace_id: workspaceId, id: customerId }).first('email', 'phone');
  return (channel === 'email' ? row?.email : row?.phone) ?? null;
}

/** Consent for one channel; the timestamp moves only when the value changes. */
export async function setConsent(db: Conn, workspaceId: string, customerIds: string[], channel: 'email' | 'sms', value: 'subscribed' | 'unsubscribed', now: Date) {
  if (!customerIds.length) return 0;
  const col = channel === 'email' ? 'email_consent' : 'sms_consent';
  return db('customers')
    .where({ workspace_id: workspaceId })
    .whereIn('id', customerIds)
    .andWhere((q) => q.whereNull(col).orWhereNot(col, value))
    .update({ [col]: value, [`${col}_at`]: now, updated_at: now });
}

export async function customersByPhone(db: Conn, workspaceId: string, phone: string): Promise<string[]> {
  const rows = await db('customers').where({ workspace_id: workspaceId, phone }).select('id');
  return rows.map((r) => String(r.id));
}

/** Workspaces whose sending number is this one (settings.smsFrom). */
export async function workspacesBySmsFrom(db: Conn, number: string): Promise<string[]> {
  const rows = await db('workspaces').whereRaw("settings->>'smsFrom' = ?", [number]).select('id');
  return rows.map((r) => String(r.id));
}

export async function workspaceExists(db: Conn, id: string): Promise<boolean> {
  return !!(await db('workspaces').where({ id }).first('id'));
}

/**
 * An engagement event on the customer (email_open, email_click) so that segments can use it.
 * event_id makes a repeat (the same open, the same link clicked again) a no-op; returns
 * whether a row was stored.
 */
export async function insertCustomerEvent(
  db: Conn,
  e: { workspaceId: string; customerId: string; eventId: string; type: string; occurredAt: Date; properties: Record<string, unknown> },
): Promise<boolean> {
  const res = await db.raw(
    `INSERT INTO events (workspace_id, customer_id, event_id, type, channel, occurred_at, properties, created_at)
     VALUES (?, ?, ?, ?, 'email', ?, ?::jsonb, ?)
     ON CONFLICT (workspace_id, event_id) WHERE event_id IS NOT NULL DO NOTHING RETURNING id`,
    bindings([e.workspaceId, e.customerId, e.eventId, e.type, e.occurredAt, JSON.stringify(e.properties), e.occurredAt]),
  );
  return res.rows.length > 0;
}

/**
 * Provider status callbacks. Each transition is one conditional UPDATE whose WHERE lists the
 * states it may leave, so replays and out-of-order callbacks are no-ops and a status never moves
 * backwards (queued < sending < sent < delivered; failed and delivered are terminal). `unknown`
 * (a crash left the send in doubt) may be resolved by the provider's word.
 */
const MAY_LEAVE: Record<'sent' | 'delivered' | 'failed', string[]> = {
  sent: ['queued', 'sending', 'unknown'],
  delivered: ['queued', 'sending', 'sent', 'unknown'],
  failed: ['queued', 'sending', 'sent', 'unknown'],
};

export async function advanceStatus(
  db: Conn,
  where: { providerId: string; messageId?: string; workspaceId?: string },
  to: 'sent' | 'delivered' | 'failed',
  now: Date,
  error?: string,
): Promise<Array<{ id: string; workspace_id: string; address: string | null; customer_id: string | null }>> {
  const q = db('messages').whereIn('status', MAY_LEAVE[to]).andWhere('channel', 'sms');
  if (where.workspaceId) q.andWhere('workspace_id', where.workspaceId);
  // By provider id; or by our own message id from the callback URL, for a callback that arrives
  // before dispatch has stored the provider id (then provider_id is filled in here).
  q.andWhere((w) => {
    w.where('provider_id', where.providerId);
    if (where.messageId) w.orWhere((o) => o.where('id', where.messageId!).whereNull('provider_id'));
  });
  const patch: Record<string, unknown> = { status: to, provider_id: where.providerId };
  if (to === 'sent') patch.sent_at = db.raw('coalesce(sent_at, ?)', [now]);
  if (to === 'delivered') {
    patch.delivered_at = db.raw('coalesce(delivered_at, ?)', [now]);
    patch.sent_at = db.raw('coalesce(sent_at, ?)', [now]);
  }
  if (to === 'failed') {
    patch.failed_at = db.raw('coalesce(failed_at, ?)', [now]);
    patch.error = error ?? 'failed';
  }
  return q.update(patch).returning(['id', 'workspace_id', 'address', 'customer_id']);
}

/** When this installation moved to HARK_SIGNING_SECRET (migration 0012), if it had sent messages before. */
export async function legacyLinksBefore(db: Knex): Promise<Date | null> {
  const row = await db('hark_secrets').where({ name: 'legacy_links_before' }).first('value');
  return row ? new Date(row.value as string) : null;
}

/** Records an inbound SMS by its MessageSid; false when it was recorded before (a retry or a replay). */
export async function firstInbound(trx: Knex.Transaction, messageSid: string, now: Date): Promise<boolean> {
  const rows = await trx('twilio_inbound').insert({ message_sid: messageSid.slice(0, 64), received_at: now }).onConflict('message_sid').ignore().returning('message_sid');
  return rows.length > 0;
}
