import type { PurchaseInput } from './schema';
import { pgArray } from './pg-array';

/**
 * The items of these purchases as seven array parameters, in the order the item INSERTs of the
 * batch path (service.ts) and of known customers' groups (known.ts) unnest them:
 * order_id, sku, name, category, brand, quantity, unit_price.
 */
export function itemArrays(rows: ReadonlyArray<PurchaseInput>): string[] {
  const cols: Array<Array<string | number | undefined>> = [[], [], [], [], [], [], []];
  for (const r of rows) {
    for (const x of r.items ?? []) {
      cols[0]!.push(r.orderId);
      cols[1]!.push(x.sku);
      cols[2]!.push(x.name);
      cols[3]!.push(x.category);
      cols[4]!.push(x.brand);
      cols[5]!.push(x.quantity);
      cols[6]!.push(x.unitPrice);
    }
  }
  return cols.map(pgArray);
}

/**
 * The incremental stats rule: `UPDATE customer_stats s SET ${STATS_ADD} FROM <v> WHERE
 * s.customer_id = v.customer_id`, where v has, per customer, what its new purchases add:
 * n, spent, first_at, last_at, n90, spent90, and the merged category map `cats` with its arg-max
 * `top` (both null when the purchases had no category). One binding: updated_at.
 */
export const STATS_ADD = `
  purchase_count = s.purchase_count + v.n,
  total_spent = s.total_spent + v.spent,
  first_purchase_at = LEAST(s.first_purchase_at, v.first_at),
  last_purchase_at = GREATEST(s.last_purchase_at, v.last_at),
  purchases_90d = s.purchases_90d + v.n90,
  spent_90d = s.spent_90d + v.spent90,
  category_spend = coalesce(v.cats, s.category_spend),
  top_category = CASE WHEN v.cats IS NULL THEN s.top_category ELSE v.top END,
  updated_at = ?`;
