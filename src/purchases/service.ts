import { bindings } from '../db';
import type { Knex } from 'knex';
import type { Db } from '../db';
import { normalizeRef, NormalRef, resolveCustomers } from '../customers/identity';
import { withRetry } from '../tx';
import type { PurchaseInput } from './schema';

const DAY = 86400000;

export interface IngestResult {
  /** Per input row: the stored purchase id and whether this call created it. */
  outcomes: Array<{ id: string; customerId: string; created: boolean }>;
}

type Row = PurchaseInput & { ref: NormalRef };

/**
 * Stores purchases set-based: one statement each for identity, purchases, items and stats,
 * whatever the batch size. The unique (workspace, orderId) key makes replays and concurrent
 * duplicates count once; stats are updated only for purchases this call inserted, in the same
 * transaction, incrementally (never recomputed over a customer's history).
 */
export async function ingestPurchases(db: Db, workspaceId: string, input: PurchaseInput[], now: Date): Promise<IngestResult> {
  const rows: Row[] = input.map((p, i) => ({ ...p, ref: normalizeRef(p.customer, `${i}.customer`) }));
  return withRetry(db, async (trx) => {
    const { ids: customerIds } = await resolveCustomers(trx, workspaceId, rows.map((r) => r.ref), now);

    // Within one batch the first row with an orderId wins; later ones are replays of it.
    const firstIndex = new Map<string, number>();
    rows.forEach((r, i) => firstIndex.has(r.orderId) || firstIndex.set(r.orderId, i));
    const fresh = [...firstIndex.values()];

    const inserted = await trx.raw(
      `INSERT INTO purchases (workspace_id, customer_id, order_id, occurred_at, total, currency, store_id, channel, created_at)
       SELECT ?, c, o, t, tot, cur, st, ch, ? FROM unnest(?::bigint[], ?::text[], ?::timestamptz[], ?::numeric[], ?::text[], ?::text[], ?::text[])
         AS u(c, o, t, tot, cur, st, ch)
       ON CONFLICT (workspace_id, order_id) DO NOTHING
       RETURNING id, order_id`,
      bindings([
        workspaceId, now,
        fresh.map((i) => customerIds[i]), fresh.map((i) => rows[i]!.orderId), fresh.map((i) => rows[i]!.occurredAt),
        fresh.map((i) => rows[i]!.total), fresh.map((i) => rows[i]!.currency ?? null), fresh.map((i) => rows[i]!.storeId ?? null),
        fresh.map((i) => rows[i]!.channel ?? null),
      ]),
    );
    const newIds = new Map<string, string>(inserted.rows.map((r: { id: string; order_id: string }) => [r.order_id, r.id]));
    const newRows = fresh.filter((i) => newIds.has(rows[i]!.orderId));

    await insertItems(trx, workspaceId, newRows.map((i) => ({ row: rows[i]!, purchaseId: newIds.get(rows[i]!.orderId)!, customerId: customerIds[i]! })));
    await addToStats(trx, newRows.map((i) => ({ row: rows[i]!, customerId: customerIds[i]! })), now);

    // Replays: look up what is stored under their orderIds.
    const replayOrders = rows.filter((r) => !newIds.has(r.orderId)).map((r) => r.orderId);
    const stored = new Map<string, { id: string; customer_id: string }>();
    if (replayOrders.length) {
      const found = await trx('purchases').where('workspace_id', workspaceId).whereIn('order_id', [...new Set(replayOrders)]).select('id', 'order_id', 'customer_id');
      for (const f of found) stored.set(f.order_id, f);
    }
    return {
      outcomes: rows.map((r, i) => {
        const created = newIds.has(r.orderId) && firstIndex.get(r.orderId) === i;
        if (created) return { id: newIds.get(r.orderId)!, customerId: customerIds[i]!, created };
        const s = stored.get(r.orderId) ?? { id: newIds.get(r.orderId)!, customer_id: customerIds[firstIndex.get(r.orderId)!]! };
        return { id: s.id, customerId: s.customer_id, created: false };
      }),
    };
  });
}

async function insertItems(trx: Knex.Transaction, workspaceId: string, list: Array<{ row: Row; purchaseId: string; customerId: string }>) {
  const cols: unknown[][] = [[], [], [], [], [], [], [], [], []];
  for (const { row, purchaseId, customerId } of list) {
    for (const it of row.items ?? []) {
      const vals = [purchaseId, customerId, row.occurredAt, it.sku, it.name ?? null, it.category ?? null, it.brand ?? null, it.quantity, it.unitPrice];
      vals.forEach((v, k) => cols[k]!.push(v));
    }
  }
  if (!cols[0]!.length) return;
  await trx.raw(
    `INSERT INTO purchase_items (purchase_id, workspace_id, customer_id, occurred_at, sku, name, category, brand, quantity, unit_price)
     SELECT p, ?, c, t, s, n, cat, b, q, up FROM unnest(?::bigint[], ?::bigint[], ?::timestamptz[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::numeric[])
       AS u(p, c, t, s, n, cat, b, q, up)`,
    bindings([workspaceId, ...cols]),
  );
}

interface Agg {
  n: number;
  spent: number; // in cents, to add exactly
  first: number;
  last: number;
  n90: number;
  spent90: number;
  cats: Record<string, number>;
}

async function addToStats(trx: Knex.Transaction, list: Array<{ row: Row; customerId: string }>, now: Date) {
  if (!list.length) return;
  const per = new Map<string, Agg>();
  const since90 = now.getTime() - 90 * DAY;
  for (const { row, customerId } of list) {
    const t = Date.parse(row.occurredAt);
    const cents = Math.round(row.total * 100);
    const a = per.get(customerId) ?? { n: 0, spent: 0, first: t, last: t, n90: 0, spent90: 0, cats: {} };
    a.n++;
    a.spent += cents;
    a.first = Math.min(a.first, t);
    a.last = Math.max(a.last, t);
    if (t > since90 && t <= now.getTime()) {
      a.n90++;
      a.spent90 += cents;
    }
    for (const it of row.items ?? []) {
      if (it.category) a.cats[it.category] = (a.cats[it.category] ?? 0) + Math.round(it.quantity * it.unitPrice * 100);
    }
    per.set(customerId, a);
  }
  const ids = [...per.keys()].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
  // Lock the stats rows in one global order so that concurrent batches queue rather than deadlock.
  // One row needs no ordering: the UPDATE's own lock is enough, and a round trip is saved.
  if (ids.length > 1) await trx.raw('SELECT 1 FROM customer_stats WHERE customer_id = ANY(?::bigint[]) ORDER BY customer_id FOR UPDATE', [ids]);
  const a = ids.map((id) => per.get(id)!);
  const cents = (c: number) => (c / 100).toFixed(2);
  await trx.raw(
    `UPDATE customer_stats s SET
       purchase_count = s.purchase_count + v.n,
       total_spent = s.total_spent + v.spent,
       first_purchase_at = LEAST(s.first_purchase_at, v.first_at),
       last_purchase_at = GREATEST(s.last_purchase_at, v.last_at),
       purchases_90d = s.purchases_90d + v.n90,
       spent_90d = s.spent_90d + v.spent90,
       -- The merged map is computed once per row, not once per column.
       (category_spend, top_category) = (
         SELECT m.cs, CASE WHEN v.cats = '{}'::jsonb THEN s.top_category ELSE hark_top_key(m.cs) END
         FROM (SELECT CASE WHEN v.cats = '{}'::jsonb THEN s.category_spend ELSE hark_jsonb_add(s.category_spend, v.cats) END AS cs) m),
       updated_at = ?
     FROM unnest(?::bigint[], ?::int[], ?::numeric[], ?::timestamptz[], ?::timestamptz[], ?::int[], ?::numeric[], ?::jsonb[])
       AS v(customer_id, n, spent, first_at, last_at, n90, spent90, cats)
     WHERE s.customer_id = v.customer_id`,
    [
      now, ids, a.map((x) => x.n), a.map((x) => cents(x.spent)), a.map((x) => new Date(x.first)), a.map((x) => new Date(x.last)),
      a.map((x) => x.n90), a.map((x) => cents(x.spent90)),
      a.map((x) => JSON.stringify(Object.fromEntries(Object.entries(x.cats).map(([k, v]) => [k, Number(cents(v))])))),
    ],
  );
}
