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

/** `unfinished`: the first arrival still holds its body, i.e. it is not mapped yet (queued, or interrupted). */
export type Arrival = { id: string; first: true } | { id: string; first: false; original: { id: string; unfinished: boolean; receivedAt: Date } } | { gone: true };
export interface ArrivalInput {
  workspaceId: string;
  connectorId: string;
  name: string;
  topic: string;
  body: Buffer | null;
  /** Set for a delivery decided at arrival (an unmapped topic): stored final, without its body. */
  outcome?: Outcome;
  reason?: string;
}

/**
 * Stores verified deliveries, once per (connector, name), in one statement for the group. A
 * redelivery becomes one more row, listed as a duplicate of the first and without a body; the
 * caller re-queues the first if it is still pending (its job may have been lost).
 */
export async function recordArrivals(db: Knex, list: ArrivalInput[], now: Date): Promise<Arrival[]> {
  const final = (d: ArrivalInput) => !!d.outcome && d.outcome !== 'pending';
  const { rows } = await db.raw(
    `INSERT INTO connector_deliveries (workspace_id, connector_id, name, topic, received_at, body, outcome, reason, mapped_at)
     SELECT w, c, n, t, ?, b, o, r, m FROM unnest(?::uuid[], ?::uuid[], ?::text[], ?::text[], ?::bytea[], ?::text[], ?::text[], ?::timestamptz[]) AS u(w, c, n, t, b, o, r, m)
     WHERE EXISTS (SELECT 1 FROM connectors k WHERE k.id = u.c) -- deleted meanwhile (another process's cache): not stored
     ON CONFLICT (connector_id, name) WHERE duplicate_of IS NULL DO NOTHING RETURNING id, connector_id, name`,
    bindings([
      now, list.map((d) => d.workspaceId), list.map((d) => d.connectorId), list.map((d) => d.name), list.map((d) => d.topic),
      list.map((d) => (final(d) ? null : d.body)), list.map((d) => d.outcome ?? 'pending'), list.map((d) => d.reason ?? null), list.map((d) => (final(d) ? now : null)),
    ]),
  );
  const inserted = new Map((rows as Array<{ id: string; connector_id: string; name: string }>).map((r) => [`${r.connector_id} ${r.name}`, String(r.id)]));
  const out: Arrival[] = [];
  for (const d of list) {
    const key = `${d.connectorId} ${d.name}`;
    const id = inserted.get(key);
    if (id) {
      inserted.delete(key); // the same name twice in one group: the second is a redelivery
      out.push({ id, first: true });
    } else out.push(await recordDuplicate(db, d, now));
  }
  return out;
}

async function recordDuplicate(db: Knex, d: ArrivalInput, now: Date): Promise<Arrival> {
  if (!(await findConnector(db, d.connectorId))) return { gone: true };
  const original = (await db('connector_deliveries').where({ connector_id: d.connectorId, name: d.name }).whereNull('duplicate_of').first('id', 'received_at', db.raw('body IS NOT NULL AS unfinished'))) as
    | { id: string; unfinished: boolean; received_at: Date }
    | undefined;
  const [dup] = await db('connector_deliveries')
    .insert({
      workspace_id: d.workspaceId, connector_id: d.connectorId, name: d.name, topic: d.topic, received_at: now, body: null,
      outcome: 'duplicate', reason: original ? `redelivery of ${original.id}` : 'redelivery', duplicate_of: original?.id ?? null, mapped_at: now,
    })
    .returning('id');
  return { id: String(dup.id), first: false, original: { id: String(original?.id ?? dup.id), unfinished: !!original?.unfinished, receivedAt: new Date(original?.received_at ?? now) } };
}

export type MappableDelivery = DeliveryRow & { type: string };

/** Deliveries with their connector's type, aligned with the ids (undefined: gone with its connector). */
export async function getDeliveries(db: Conn, ids: string[]): Promise<Array<MappableDelivery | undefined>> {
  const { rows } = await db.raw(
    `SELECT d.*, c.type FROM unnest(?::bigint[]) AS x(id) JOIN connector_deliveries d ON d.id = x.id JOIN connectors c ON c.id = d.connector_id`,
    bindings([ids]),
  );
  const byId = new Map((rows as MappableDelivery[]).map((r) => [String(r.id), r]));
  return ids.map((id) => byId.get(String(id)));
}

export async function getDelivery(db: Conn, id: string): Promise<MappableDelivery | undefined> {
  return (await getDeliveries(db, [id]))[0];
}

/** Final outcomes; the raw body (personal data) is not kept past them. */
export async function finishDeliveries(db: Conn, list: Array<{ id: string; outcome: Outcome; reason: string | null }>, now: Date): Promise<void> {
  await db.raw(
    `UPDATE connector_deliveries d SET outcome = u.o, reason = u.r, mapped_at = ?, body = NULL
     FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(id, o, r) WHERE d.id = u.id`,
    bindings([now, list.map((x) => x.id), list.map((x) => x.outcome), list.map((x) => x.reason?.slice(0, 500) ?? null)]),
  );
}

/** An outcome reached before the delivery is finished (the body stays until it is). */
export async function markDeliveries(db: Conn, list: Array<{ id: string; outcome: Outcome; reason: string | null }>): Promise<void> {
  await db.raw(
    `UPDATE connector_deliveries d SET outcome = u.o, reason = u.r FROM unnest(?::bigint[], ?::text[], ?::text[]) AS u(id, o, r) WHERE d.id = u.id`,
    bindings([list.map((x) => x.id), list.map((x) => x.outcome), list.map((x) => x.reason)]),
  );
}

export async function finishDelivery(db: Conn, id: string, outcome: Outcome, reason: string | null, now: Date): Promise<void> {
  await finishDeliveries(db, [{ id, outcome, reason }], now);
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

export type KeptRefund = { refund_id: string; amount: string; delivery_id: string | null };

/**
 * Refunds kept for these orders. First a barrier on each order's lock (taken and released by one
 * statement, in one global order): it waits for any refund deciding under that lock to commit, so
 * the second statement (a new snapshot) sees what it kept.
 */
export async function keptRefunds(db: Knex, orders: Array<{ workspaceId: string; orderId: string }>): Promise<KeptRefund[][]> {
  const ws = orders.map((o) => o.workspaceId);
  const ids = orders.map((o) => o.orderId);
  await db.raw(
    `SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(w || ':connector-order:' || o, 0) AS h FROM unnest(?::text[], ?::text[]) AS x(w, o) ORDER BY 1) s`,
    bindings([ws, ids]),
  );
  const { rows } = await db.raw(
    `SELECT x.k, p.refund_id, p.amount, p.delivery_id FROM unnest(?::uuid[], ?::text[]) WITH ORDINALITY AS x(w, o, k)
     JOIN connector_pending_refunds p ON p.workspace_id = x.w AND p.order_id = x.o ORDER BY x.k, p.created_at`,
    bindings([ws, ids]),
  );
  const out: KeptRefund[][] = orders.map(() => []);
  for (const r of rows as Array<KeptRefund & { k: string }>) out[Number(r.k) - 1]!.push({ refund_id: r.refund_id, amount: r.amount, delivery_id: r.delivery_id ? String(r.delivery_id) : null });
  return out;
}

export async function dropPendingRefund(db: Conn, workspaceId: string, refundId: string): Promise<void> {
  await db('connector_pending_refunds').where({ workspace_id: workspaceId, refund_id: refundId }).del();
}
