import type { Knex } from 'knex';
import { bindings } from '../db';
import { notFound } from '../errors';
import { onErasure } from '../customers/erasure';

/** All SQL of outgoing webhooks: endpoints (with rotatable secrets) and the delivery outbox. */
type Conn = Knex | Knex.Transaction;

export interface EndpointRow {
  id: string;
  workspace_id: string;
  url: string;
  description: string | null;
  disabled: boolean;
  event_types: string[] | null;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

export async function insertEndpoint(db: Conn, row: Pick<EndpointRow, 'workspace_id' | 'url' | 'description' | 'event_types' | 'secret'>, now: Date): Promise<EndpointRow> {
  const [out] = await db('webhook_endpoints').insert({ ...row, created_at: now, updated_at: now }).returning('*');
  return out as EndpointRow;
}

export async function requireEndpoint(db: Conn, workspaceId: string, id: string, forUpdate = false): Promise<EndpointRow> {
  const q = db('webhook_endpoints').where({ workspace_id: workspaceId, id });
  const row = (await (forUpdate ? q.forUpdate() : q).first()) as EndpointRow | undefined;
  if (!row) throw notFound('webhook endpoint');
  return row;
}

export async function listEndpoints(db: Conn, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<EndpointRow[]> {
  const q = db('webhook_endpoints').where({ workspace_id: workspaceId });
  if (after) q.andWhereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit) as Promise<EndpointRow[]>;
}

export async function updateEndpoint(db: Conn, workspaceId: string, id: string, patch: Record<string, unknown>): Promise<EndpointRow> {
  const [row] = await db('webhook_endpoints').where({ workspace_id: workspaceId, id }).update(patch).returning('*');
  if (!row) throw notFound('webhook endpoint');
  return row as EndpointRow;
}

export async function deleteEndpoint(db: Conn, workspaceId: string, id: string): Promise<void> {
  const n = await db('webhook_endpoints').where({ workspace_id: workspaceId, id }).del();
  if (!n) throw notFound('webhook endpoint');
}

/**
 * One delivery per (enabled, subscribed) endpoint of the event's workspace, with its payload built
 * in SQL from ids and times only (no address, no body). ON CONFLICT: a replayed feed batch adds
 * nothing twice. The webhook-id is derived from the event and endpoint, stable across attempts.
 */
export async function insertDeliveries(trx: Knex.Transaction, eventIds: string[], now: Date): Promise<string[]> {
  if (!eventIds.length) return [];
  const { rows } = await trx.raw(
    `INSERT INTO webhook_deliveries (workspace_id, endpoint_id, message_event_id, event_type, webhook_id, payload, status, next_attempt_at, created_at)
     SELECT e.workspace_id, w.id, e.id, e.type, 'msg_' || e.id || '_' || replace(w.id::text, '-', ''),
            jsonb_build_object(
              'type', 'message.' || e.type,
              'timestamp', to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
              'data', jsonb_strip_nulls(jsonb_build_object(
                'eventId', e.id::text, 'messageId', m.id::text, 'channel', m.channel, 'status', m.status,
                'campaignId', m.campaign_id, 'automationId', m.automation_id, 'stepIndex', m.step_index,
                'variant', m.variant, 'customerExternalId', c.external_id) || e.data)),
            'pending', ?, ?
       FROM message_events e
       JOIN messages m ON m.id = e.message_id AND m.workspace_id = e.workspace_id
       LEFT JOIN customers c ON c.id = m.customer_id AND c.workspace_id = m.workspace_id
       JOIN webhook_endpoints w ON w.workspace_id = e.workspace_id AND NOT w.disabled
                               AND (w.event_types IS NULL OR e.type = ANY(w.event_types))
      WHERE e.id = ANY(?::bigint[])
     ON CONFLICT (endpoint_id, message_event_id) DO NOTHING
     RETURNING id`,
    bindings([now, now, eventIds]),
  );
  return (rows as Array<{ id: string }>).map((r) => String(r.id));
}

export interface DeliveryWork {
  id: string;
  status: string;
  attempts: number;
  webhook_id: string;
  payload: unknown;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  disabled: boolean;
}

export async function loadDelivery(db: Conn, id: string): Promise<DeliveryWork | undefined> {
  return db('webhook_deliveries as d')
    .join('webhook_endpoints as w', 'w.id', 'd.endpoint_id')
    .where('d.id', id)
    .first('d.id', 'd.status', 'd.attempts', 'd.webhook_id', 'd.payload', 'w.url', 'w.secret', 'w.previous_secret', 'w.previous_secret_expires_at', 'w.disabled');
}

/** Records one attempt; only a pending delivery moves (a late duplicate job changes nothing). */
export async function recordAttempt(
  db: Conn,
  id: string,
  outcome: { status: 'pending' | 'delivered' | 'failed'; code: number | null; error: string | null; nextAt: Date | null },
  now: Date,
): Promise<void> {
  await db('webhook_deliveries')
    .where({ id, status: 'pending' })
    .update({
      status: outcome.status,
      attempts: db.raw('attempts + 1'),
      last_status_code: outcome.code,
      last_error: outcome.error,
      next_attempt_at: outcome.nextAt,
      delivered_at: outcome.status === 'delivered' ? now : null,
      failed_at: outcome.status === 'failed' ? now : null,
    });
}

/** Pending deliveries overdue by more than `staleMs`: their job was lost (e.g. with Redis). */
export async function overdueDeliveries(db: Conn, now: Date, staleMs: number, limit: number): Promise<string[]> {
  const rows = await db('webhook_deliveries')
    .where({ status: 'pending' })
    .andWhere('next_attempt_at', '<', new Date(now.getTime() - staleMs))
    .orderBy('next_attempt_at')
    .limit(limit)
    .select('id');
  return rows.map((r) => String(r.id));
}

export async function listDeliveries(db: Conn, workspaceId: string, endpointId: string, limit: number, status?: string, beforeId?: string) {
  const q = db('webhook_deliveries').where({ workspace_id: workspaceId, endpoint_id: endpointId });
  if (status) q.andWhere({ status });
  if (beforeId) q.andWhere('id', '<', beforeId);
  return q.orderBy('id', 'desc').limit(limit).select('id', 'webhook_id', 'event_type', 'status', 'attempts', 'last_status_code', 'last_error', 'next_attempt_at', 'created_at', 'delivered_at', 'failed_at', 'payload');
}

/**
 * Erasure: deliveries of the customer's message events keep their ids and times, not the
 * customer's externalId nor a clicked URL (pending ones are then delivered without them).
 */
onErasure(async (trx, workspaceId, customerId) => {
  await trx.raw(
    `UPDATE webhook_deliveries d SET payload = (d.payload #- '{data,customerExternalId}') #- '{data,url}'
       FROM message_events e JOIN messages m ON m.id = e.message_id AND m.workspace_id = e.workspace_id
      WHERE d.workspace_id = ? AND d.message_event_id = e.id AND e.workspace_id = d.workspace_id AND m.workspace_id = ? AND m.customer_id = ?`,
    [workspaceId, workspaceId, customerId],
  );
});
