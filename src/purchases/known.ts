import { WORKSPACE_PARAM } from '../customers/identity';
import type { Db } from '../db';
import { bindings } from '../db';
import type { PurchaseInput } from './schema';
import { pgArray } from './pg-array';
import { itemArrays, statsAdd } from './statements';
import { retryAborted } from '../tx';

const DAY = 86400000;

/** A purchase whose customer is named by externalId. */
export type KnownRow = PurchaseInput & { customer: { externalId: string } };

export interface KnownResult {
  /** orderId -> what this statement inserted. */
  inserted: Map<string, { id: string; customerId: string; occurredAt: Date }>;
  /** The externalIds that named an existing customer; rows naming another were not stored. */
  found: Set<string>;
}

/**
 * Purchases of existing customers (found by externalId: the common case of a till) in ONE
 * statement, so in one round trip and its own transaction: find the customers (FOR KEY SHARE, as
 * resolveCustomers does), insert purchases (ON CONFLICT DO NOTHING: a known orderId is a replay)
 * and their items, and add the inserted ones to their customers' stats rows, which it locks in
 * customer_id order first, as the batch path does, so that concurrent writers queue rather than
 * deadlock. The category map is merged in SQL here (the batch path merges in Node, which costs
 * a round trip a group of single purchases cannot afford): exact numeric sums, the arg-max with
 * ties to the first key in code-point order, as mergeCategories does.
 *
 * Rows whose externalId names no customer are not stored: the caller sends them down the full
 * path (identity resolution, which may create the customer). Each orderId must appear once.
 */
export async function ingestKnown(db: Db, workspaceId: string, rows: KnownRow[], now: Date): Promise<KnownResult> {
  const since90 = new Date(now.getTime() - 90 * DAY);
  // The statement is its own transaction: retried as a whole when Postgres aborts it.
  const res = await retryAborted(() => db.raw(
    `WITH u AS (
       SELECT * FROM unnest(?::text[], ?::text[], ?::timestamptz[], ?::numeric[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS u(x, o, t, tot, cur, st, ch, k)
     ), cust AS (
       SELECT e.x, c.id FROM (SELECT DISTINCT x FROM u ORDER BY x) e
       CROSS JOIN LATERAL (SELECT id FROM customers WHERE workspace_id = ${WORKSPACE_PARAM} AND external_id = e.x FOR KEY SHARE) c
     ), ins AS (
       INSERT INTO purchases (workspace_id, customer_id, order_id, occurred_at, total, currency, store_id, channel, created_at)
       SELECT ?, cust.id, u.o, u.t, u.tot, u.cur, u.st, u.ch, ? FROM u JOIN cust ON cust.x = u.x ORDER BY u.k
       ON CONFLICT (workspace_id, order_id) DO NOTHING
       RETURNING id, order_id, customer_id, occurred_at, total
     ), it AS (
       SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::numeric[]) WITH ORDINALITY AS i(o, s, n, cat, b, q, up, k)
     ), items AS (
       INSERT INTO purchase_items (purchase_id, workspace_id, customer_id, occurred_at, sku, name, category, brand, quantity, unit_price)
       SELECT ins.id, ?, ins.customer_id, ins.occurred_at, it.s, it.n, it.cat, it.b, it.q, it.up FROM it JOIN ins ON ins.order_id = it.o ORDER BY it.k
     ), agg AS (
       SELECT customer_id, count(*)::int AS n, sum(total) AS spent, min(occurred_at) AS first_at, max(occurred_at) AS last_at,
         count(*) FILTER (WHERE occurred_at > ? AND occurred_at <= ?)::int AS n90,
         coalesce(sum(total) FILTER (WHERE occurred_at > ? AND occurred_at <= ?), 0) AS spent90
       FROM ins GROUP BY customer_id
     ), cats AS (
       SELECT ins.customer_id, it.cat, sum(it.q * it.up) AS amt FROM it JOIN ins ON ins.order_id = it.o WHERE it.cat IS NOT NULL GROUP BY 1, 2
     ), locked AS (
       SELECT s.customer_id, s.category_spend FROM (SELECT customer_id FROM agg ORDER BY customer_id) a
       CROSS JOIN LATERAL (SELECT customer_id, category_spend FROM customer_stats WHERE customer_id = a.customer_id FOR UPDATE) s
     ), merged AS (
       SELECT l.customer_id, m.map AS cats, (SELECT key FROM jsonb_each_text(m.map) ORDER BY value::numeric DESC, key COLLATE "C" LIMIT 1) AS top
       FROM locked l CROSS JOIN LATERAL (
         SELECT l.category_spend || jsonb_object_agg(c.cat, coalesce((l.category_spend->>c.cat)::numeric, 0) + c.amt) AS map
         FROM cats c WHERE c.customer_id = l.customer_id
       ) m
     ), upd AS (
       UPDATE customer_stats s SET ${statsAdd('agg', 'merged')}
       FROM agg JOIN locked USING (customer_id) LEFT JOIN merged USING (customer_id)
       WHERE s.customer_id = agg.customer_id
     )
     SELECT id, order_id, customer_id, occurred_at, NULL AS x FROM ins
     UNION ALL SELECT NULL, NULL, NULL, NULL, x FROM cust`,
    bindings([
      ...[
        rows.map((r) => r.customer.externalId), rows.map((r) => r.orderId), rows.map((r) => r.occurredAt), rows.map((r) => r.total),
        rows.map((r) => r.currency), rows.map((r) => r.storeId), rows.map((r) => r.channel),
      ].map(pgArray),
      workspaceId, workspaceId, now, ...itemArrays(rows), workspaceId, since90, now, since90, now, now,
    ]),
    // A named (prepared) statement: parsed once per connection, and planned once it has a generic
    // plan, instead of on every group (planning this statement cost about as much as running it).
  ).options({ name: 'hark_ingest_known_v2' }));
  const inserted = new Map<string, { id: string; customerId: string; occurredAt: Date }>();
  const found = new Set<string>();
  for (const r of res.rows as Array<{ id: string | null; order_id: string | null; customer_id: string | null; occurred_at: Date | null; x: string | null }>) {
    if (r.id !== null) inserted.set(r.order_id!, { id: String(r.id), customerId: String(r.customer_id), occurredAt: r.occurred_at! });
    else found.add(r.x!);
  }
  return { inserted, found };
}
