import type { Knex } from 'knex';
import { bindings } from '../db';
import { notFound } from '../errors';
import type { Outcome } from './schema';

/** All SQL of connectors: the connectors, their deliveries, and refunds waiting for their order. */
type Conn = Knex | Knex.Transaction;

export interface ConnectorRow {
  id: string;
  workspace_id: string;
  type: string;
  name: string;
  secret_enc: Buffer;
  created_at: Date;
}

export interface DeliveryRow {
  id: string;
  workspace_id: string;
  connector_id: string;
  name: string;
  topic: string;
  received_at: Date;
  body: Buffer | null;
  outcome: Outcome;
  reason: string | null;
  duplicate_of: string | null;
}

export async function insertConnector(db: Conn, row: Pick<ConnectorRow, 'workspace_id' | 'type' | 'name' | 'secret_enc'>, now: Date): Promise<ConnectorRow> {
  const [out] = await db('connectors').insert({ ...row, created_at: now }).returning('*');
  return out as ConnectorRow;
}

/** By id alone: the public route knows no workspace until it has found the connector. */
export async function findConnector(db: Conn, id: string): Promise<ConnectorRow | undefined> {
  return db('connectors').where({ id }).first();
}

export async function requireConnector(db: Conn, workspaceId: string, id: string): Promise<ConnectorRow> {
  const row = (await db('connectors').where({ workspace_id: workspaceId, id }).first()) as ConnectorRow | undefined;
  if (!row) throw notFound('connector');
  return row;
}

export async function listConnectors(db: Conn, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<ConnectorRow[]> {
  const q = db('connectors').where({ workspace_id: workspaceId });
  if (after) q.andWhereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit) as Promise<ConnectorRow[]>;
}

export async function deleteConnector(db: Conn, workspaceId: string, id: string): Promise<void> {
  const n = await db('connectors').where({ workspace_id: workspaceId, id }).del();
  if (!n) throw notFound('connector');
}

/** The newest delivery's time per connector, for the list. */
export async function lastDeliveryAt(db: Conn, connectorIds: string[]): Promise<Map<string, Date>> {
  if (!connectorIds.length) return new Map();
  const { rows } = await db.raw(
    `SELECT x.c AS connector_id, d.received_at FROM unnest(?::uuid[]) AS x(c)
     CROSS JOIN LATERAL (SELECT received_at FROM connector_deliveries WHERE connector_id = x.c ORDER BY id DESC LIMIT 1) d`,
    bindings([connectorIds]),
  );
  return new Map((rows as Array<{ connector_id: string; received_at: Date }>).map((r) => [r.connector_id, r.received_at]));
}

export type Arrival = { id: string; first: true } | { id: string; first: false; original: { id: string; outcome: Outcome } };

/**
 * Stores a verified delivery once per (connector, name). A redelivery is one more row, listed as a
 * duplicate of the first and without a body; the caller re-queues the first if it is still pending
 * (its job may have been lost).
 */
export async function recordArrival(db: Knex, d: { workspaceId: string; connectorId: string; name: string; topic: string; body: Buffer | null; outcome?: Outcome; reason?: string }, now: Date): Promise<Arrival> {
  const base = { workspace_id: d.workspaceId, connector_id: d.connectorId, name: d.name, topic: d.topic, received_at: now };
  const final = d.outcome && d.outcome !== 'pending';
  const { rows } = await db.raw(
    `INSERT INTO connector_deliveries (workspace_id, connector_id, name, topic, received_at, body, outcome, reason, mapped_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (connector_id, name) WHERE duplicate_of IS NULL DO NOTHING RETURNING id`,
    bindings([d.workspaceId, d.connectorId, d.name, d.topic, now, final ? null : d.body, d.outcome ?? 'pending', d.reason ?? null, final ? now : null]),
  );
  if (rows.length) return { id: String(rows[0].id), first: true };
  const original = await db('connector_deliveries').where({ connector_id: d.connectorId, name: d.name }).whereNull('duplicate_of').first('id', 'outcome');
  const [dup] = await db('connector_deliveries')
    .insert({ ...base, body: null, outcome: 'duplicate', reason: original ? `redelivery of ${original.id}` : 'redelivery', duplicate_of: original?.id ?? null, mapped_at: now })
    .returning('id');
  return { id: String(dup.id), first: false, original: { id: String(original?.id ?? dup.id), outcome: original?.outcome ?? 'duplicate' } };
}

export async function getDelivery(db: Conn, id: string): Promise<(DeliveryRow & { type: string }) | undefined> {
  return db('connector_deliveries as d').join('connectors as c', 'c.id', 'd.connector_id').where('d.id', id).first('d.*', 'c.type');
}

/** A final outcome; the raw body (personal data) is not kept past it. */
export async function finishDelivery(db: Conn, id: string, outcome: Outcome, reason: string | null, now: Date): Promise<void> {
  await db('connector_deliveries').where({ id }).update({ outcome, reason: reason?.slice(0, 500) ?? null, mapped_at: now, body: null });
}

export async function recentDeliveries(db: Conn, connectorId: string, limit = 100): Promise<DeliveryRow[]> {
  return db('connector_deliveries').where({ connector_id: connectorId }).orderBy('id', 'desc').limit(limit).select('id', 'name', 'topic', 'received_at', 'outcome', 'reason', 'duplicate_of');
}

/** Transaction-scoped lock on one order's key: a refund's check-then-keep and the order's arrival do not interleave. */
export async function lockOrder(trx: Knex.Transaction, workspaceId: string, orderId: string): Promise<void> {
  await trx.raw(`SELECT pg_advisory_xact_lock(hashtextextended(? || ':connector-order:' || ?, 0))`, [workspaceId, orderId]);
}

export async function purchaseExists(trx: Knex.Transaction, workspaceId: string, orderId: string): Promise<boolean> {
  return !!(await trx('purchases').where({ workspace_id: workspaceId, order_id: orderId }).first('id'));
}

export async function keepRefund(trx: Knex.Transaction, r: { workspaceId: string; orderId: string; refundId: string; amount: string; deliveryId: string }, now: Date): Promise<void> {
  await trx('connector_pending_refunds')
    .insert({ workspace_id: r.workspaceId, order_id: r.orderId, refund_id: r.refundId, amount: r.amount, delivery_id: r.deliveryId, created_at: now })
    .onConflict(['workspace_id', 'refund_id'])
    .ignore();
}

export async function pendingRefunds(trx: Conn, workspaceId: string, orderId: string): Promise<Array<{ refund_id: string; amount: string; delivery_id: string | null }>> {
  return trx('connector_pending_refunds').where({ workspace_id: workspaceId, order_id: orderId }).orderBy('created_at').select('refund_id', 'amount', 'delivery_id');
}

export async function dropPendingRefund(db: Conn, workspaceId: string, refundId: string): Promise<void> {
  await db('connector_pending_refunds').where({ workspace_id: workspaceId, refund_id: refundId }).del();
}
