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
 * The incremental stats rule, as the SET list of `UPDATE customer_stats s`: `a` names the row
 * with what a customer's new purchases add (n, spent, first_at, last_at, n90, spent90), `m` the
 * row with their merged category map `cats` and its arg-max `top` (null when they had no
 * category; a LEFT JOIN). The two are separate so that each statement keeps the join it was
 * planned and measured with. One binding: updated_at.
 */
export const statsAdd = (a: string, m: string) => `
  purchase_count = s.purchase_count + ${a}.n,
  total_spent = s.total_spent + ${a}.spent,
  first_purchase_at = LEAST(s.first_purchase_at, ${a}.first_at),
  last_purchase_at = GREATEST(s.last_purchase_at, ${a}.last_at),
  purchases_90d = s.purchases_90d + ${a}.n90,
  spent_90d = s.spent_90d + ${a}.spent90,
  category_spend = coalesce(${m}.cats, s.category_spend),
  top_category = CASE WHEN ${m}.cats IS NULL THEN s.top_category ELSE ${m}.top END,
  updated_at = ?`;
