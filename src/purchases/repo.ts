import type { Db } from '../db';
import { bindings, toMoney } from '../db';
import { AppError, notFound } from '../errors';
import { withRetry } from '../tx';

const DAY = 86400000;

export async function getPurchase(db: Db, workspaceId: string, id: string) {
  const p = (await getPurchases(db, workspaceId, [id])).get(id);
  if (!p) throw notFound('purchase');
  return p;
}

/** Views of several purchases in one round trip (a group of single purchases answers with it). */
export async function getPurchases(db: Db, workspaceId: string, ids: string[]) {
  // Items come back as a JSON array beside each purchase.
  const { rows } = await db.raw(
    `SELECT p.*, c.external_id,
       coalesce((SELECT json_agg(json_build_object('sku', i.sku, 'name', i.name, 'category', i.category, 'brand', i.brand,
                  'quantity', i.quantity, 'unit_price', i.unit_price) ORDER BY i.id)
                 FROM purchase_items i WHERE i.purchase_id = p.id), '[]'::json) AS items
     FROM purchases p JOIN customers c ON c.id = p.customer_id
     WHERE p.workspace_id = ? AND p.id = ANY(?::bigint[])`,
    bindings([workspaceId, ids]),
  );
  return new Map<string, PurchaseView>(rows.map((p: Record<string, any>) => [String(p.id), purchaseView(p, p.items)]));
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
 * A refund lowers the purchase's net value and the customer's monetary stats by the amount,
 * in one transaction under the purchase's row lock, so that concurrent refunds cannot together
 * exceed what was paid. A named refund (refundId) applied before is answered without change.
 */
export async function refundPurchase(db: Db, workspaceId: string, orderId: string, amount: number, refundId: string | undefined, now: Date) {
  return withRetry(db, async (trx) => {
    const p = await trx('purchases').where({ workspace_id: workspaceId, order_id: orderId }).forUpdate().first();
    if (!p) throw notFound('purchase');
    if (refundId) {
      const prior = await trx('refunds').where({ purchase_id: p.id, refund_id: refundId }).first();
      if (prior) return { orderId, refunded: toMoney(p.refunded), replayed: true };
    }
    const paidCents = Math.round(Number(p.total) * 100);
    const refundedCents = Math.round(Number(p.refunded) * 100);
    const cents = Math.round(amount * 100);
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
