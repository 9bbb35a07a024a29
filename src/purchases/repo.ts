import type { Db } from '../db';
import { bindings, toMoney } from '../db';
import { AppError, notFound } from '../errors';
import { withRetry } from '../tx';
import type { PurchaseInput } from './schema';

const DAY = 86400000;

export async function getPurchase(db: Db, workspaceId: string, id: string) {
  const p = (await getPurchases(db, workspaceId, [id])).get(id);
  if (!p) throw notFound('purchase');
  return p;
}

/** Views of several purchases by id, in one round trip. */
export async function getPurchases(db: Db, workspaceId: string, ids: string[]) {
  const rows = await readPurchases(db, workspaceId, 'id', ids);
  return new Map<string, PurchaseView>(rows.map((p) => [String(p.id), purchaseView(p, p.items)]));
}

/** Views of several purchases by orderId, in one round trip (the replays of a group of single purchases). */
export async function getPurchasesByOrder(db: Db, workspaceId: string, orderIds: string[]) {
  const rows = await readPurchases(db, workspaceId, 'order_id', orderIds);
  return new Map<string, PurchaseView>(rows.map((p) => [p.order_id as string, purchaseView(p, p.items)]));
}

async function readPurchases(db: Db, workspaceId: string, by: 'id' | 'order_id', keys: string[]): Promise<Array<Record<string, any>>> {
  // Items come back as a JSON array beside each purchase. Purchases are probed one key at a time
  // (by the primary key or the unique (workspace_id, order_id) index): `workspace_id = ? AND
  // id = ANY(?)` was planned, without table statistics, as a bitmap AND with a scan of the
  // workspace's whole occurred_at index. `by` is one of two column names, never input.
  const { rows } = await db.raw(
    `SELECT p.*, c.external_id,
       coalesce((SELECT json_agg(json_build_object('sku', i.sku, 'name', i.name, 'category', i.category, 'brand', i.brand,
                  'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.id)
                 FROM purchase_items i WHERE i.purchase_id = p.id), '[]'::json) AS items
     FROM unnest(?::${by === 'id' ? 'bigint' : 'text'}[]) AS x(k) JOIN purchases p ON p.${by} = x.k AND p.workspace_id = ? JOIN customers c ON c.id = p.customer_id`,
    bindings([keys, workspaceId]),
  );
  return rows;
}

export type PurchaseView = ReturnType<typeof purchaseView>;

export function purchaseView(p: Record<string, any>, items: Record<string, any>[]) {
  return {
    id: String(p.id),
    orderId: p.order_id,
    customer: { id: String(p.customer_id), externalId: p.external_id ?? null },
    occurredAt: new Date(p.occurred_at).toISOString(),
    total: toMoney(p.total),
    refunded: toMoney(p.refunded),
    currency: p.currency?.trim() ?? null,
    storeId: p.store_id,
    channel: p.channel,
    items: items.map((i) => ({ sku: i.sku, name: i.name, category: i.category, brand: i.brand, quantity: i.quantity, unitPrice: toMoney(i.unit_price) })),
  };
}

/**
 * The view of a purchase this request has just stored, without reading it back: what was
 * written is the input (money to the cent, as the zod schema admits it), and what Postgres
 * made of it is the id, the occurred_at it returned and the customer's externalId. The same
 * function formats it as a read would, so both answers are equal (a test holds them so).
 */
export function createdView(row: PurchaseInput, id: string, customerId: string, stored: { externalId: string | null; occurredAt: Date }): PurchaseView {
  return purchaseView(
    {
      id, order_id: row.orderId, customer_id: customerId, external_id: stored.externalId, occurred_at: stored.occurredAt,
      total: row.total, refunded: 0, currency: row.currency ?? null, store_id: row.storeId ?? null, channel: row.channel ?? null,
    },
    (row.items ?? []).map((x) => ({ sku: x.sku, name: x.name ?? null, category: x.category ?? null, brand: x.brand ?? null, quantity: x.quantity, unit_price: x.unitPrice })),
  );
}

/** How long an unnamed refund of an order and amount answers a repeat of it as a replay. */
export const UNNAMED_REFUND_WINDOW_MS = 10 * 60_000;

/**
 * A refund lowers the purchase's net value and the customer's monetary stats by the amount,
 * in one transaction under the purchase's row lock, so that concurrent refunds cannot together
 * exceed what was paid. A named refund (refundId) applied before is answered without change, and
 * so is an unnamed one repeating the order and amount of one within UNNAMED_REFUND_WINDOW_MS.
 */
export async function refundPurchase(db: Db, workspaceId: string, orderId: string, amount: number, refundId: string | undefined, now: Date) {
  return withRetry(db, async (trx) => {
    const p = await trx('purchases').where({ workspace_id: workspaceId, order_id: orderId }).forUpdate().first();
    if (!p) throw notFound('purchase');
    const cents = Math.round(amount * 100);
    if (refundId) {
      const prior = await trx('refunds').where({ purchase_id: p.id, refund_id: refundId }).first();
      if (prior) return { orderId, refunded: toMoney(p.refunded), replayed: true };
    } else {
      // An unnamed refund of the same amount of the same order within UNNAMED_REFUND_WINDOW_MS is
      // taken for a retry of it (a till that timed out and sent again), not a second refund.
      // Two real refunds of one amount in that time must be named (refundId).
      const prior = await trx('refunds')
        .where({ purchase_id: p.id, amount: (cents / 100).toFixed(2) })
        .whereNull('refund_id')
        .where('created_at', '>', new Date(now.getTime() - UNNAMED_REFUND_WINDOW_MS))
        .first('id');
      if (prior) return { orderId, refunded: toMoney(p.refunded), replayed: true };
    }
    const paidCents = Math.round(Number(p.total) * 100);
    const refundedCents = Math.round(Number(p.refunded) * 100);
    if (refundedCents + cents > paidCents) {
      throw new AppError('unprocessable', `refund exceeds what remains of the purchase (${((paidCents - refundedCents) / 100).toFixed(2)})`, [
        { path: 'amount', message: 'larger than the amount paid less earlier refunds' },
      ]);
    }
    const amt = (cents / 100).toFixed(2);
    await trx('refunds').insert({ purchase_id: p.id, workspace_id: workspaceId, amount: amt, refund_id: refundId ?? null, created_at: now });
    await trx('purchases').where({ id: p.id }).update({ refunded: trx.raw('refunded + ?::numeric', [amt]) });
    const in90 = new Date(p.occurred_at).getTime() > now.getTime() - 90 * DAY;
    await trx('customer_stats')
      .where({ customer_id: p.customer_id })
      .update({
        total_spent: trx.raw('total_spent - ?::numeric', [amt]),
        spent_90d: in90 ? trx.raw('spent_90d - ?::numeric', [amt]) : trx.raw('spent_90d'),
        updated_at: now,
      });
    return { orderId, refunded: (refundedCents + cents) / 100, replayed: false };
  });
}
