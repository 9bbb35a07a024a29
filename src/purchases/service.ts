import { bindings } from '../db';
import type { Knex } from 'knex';
import type { Db } from '../db';
import { normalizeRef, NormalRef, resolveCustomers, WORKSPACE_PARAM } from '../customers/identity';
import { withRetry } from '../tx';
import type { PurchaseInput } from './schema';
import { byBigintId, pgArray } from './pg-array';
import { itemArrays, statsAdd } from './statements';

const DAY = 86400000;

export interface Outcome {
  id: string;
  customerId: string;
  created: boolean;
  /** For a purchase this call created: its customer's externalId and its stored occurred_at. */
  stored?: { externalId: string | null; occurredAt: Date };
}

export interface IngestResult {
  /** Per input row: the stored purchase id and whether this call created it. */
  outcomes: Outcome[];
}

type Row = PurchaseInput & { ref: NormalRef };

export interface IngestOptions {
  /** Runs in the purchases' transaction before it commits (an import records its progress there, so a crash cannot count a batch twice). */
  beforeCommit?: (trx: Knex.Transaction, result: IngestResult) => Promise<void>;
}

/**
 * Stores purchases set-based: one statement each for identity, purchases with their items, and stats,
 * whatever the batch size. The unique (workspace, orderId) key makes replays and concurrent
 * duplicates count once; stats are updated only for purchases this call inserted, in the same
 * transaction, incrementally (never recomputed over a customer's history).
 */
export async function ingestPurchases(db: Db, workspaceId: string, input: PurchaseInput[], now: Date, opts: IngestOptions = {}): Promise<IngestResult> {
  const rows: Row[] = input.map((p, i) => ({ ...p, ref: normalizeRef(p.customer, `${i}.customer`) }));
  return withRetry(db, async (trx) => {
    const { ids: customerIds, externalIds } = await resolveCustomers(trx, workspaceId, rows.map((r) => r.ref), now);

    // Within one batch the first row with an orderId wins; later ones are replays of it.
    const firstIndex = new Map<string, number>();
    rows.forEach((r, i) => firstIndex.has(r.orderId) || firstIndex.set(r.orderId, i));
    const fresh = [...firstIndex.values()];

    const { newIds, occurredAt, statsMaps } = await insertPurchases(trx, workspaceId, fresh.map((i) => ({ row: rows[i]!, customerId: customerIds[i]! })), now);
    const newRows = fresh.filter((i) => newIds.has(rows[i]!.orderId));

    await addToStats(trx, newRows.map((i) => ({ row: rows[i]!, customerId: customerIds[i]! })), statsMaps, now);

    // Replays: look up what is stored under their orderIds.
    const replayOrders = rows.filter((r) => !newIds.has(r.orderId)).map((r) => r.orderId);
    const stored = new Map<string, { id: string; customer_id: string }>();
    if (replayOrders.length) {
      // One unique-index probe per orderId, whatever the table statistics say.
      const { rows: found } = await trx.raw(
        `SELECT p.id, p.order_id, p.customer_id FROM unnest(?::text[]) AS x(o) JOIN purchases p ON p.workspace_id = ${WORKSPACE_PARAM} AND p.order_id = x.o`,
        bindings([[...new Set(replayOrders)], workspaceId]),
      );
      for (const f of found as Array<{ id: string; order_id: string; customer_id: string }>) stored.set(f.order_id, f);
    }
    const result: IngestResult = {
      outcomes: rows.map((r, i): Outcome => {
        const created = newIds.has(r.orderId) && firstIndex.get(r.orderId) === i;
        if (created) return { id: newIds.get(r.orderId)!, customerId: customerIds[i]!, created, stored: { externalId: externalIds[i]!, occurredAt: occurredAt.get(r.orderId)! } };
        const s = stored.get(r.orderId) ?? { id: newIds.get(r.orderId)!, customer_id: customerIds[firstIndex.get(r.orderId)!]! };
        return { id: s.id, customerId: s.customer_id, created: false };
      }),
    };
    await opts.beforeCommit?.(trx, result);
    return result;
  });
}

/**
 * Purchases and their items in one statement (one round trip): items are joined to the purchases
 * the INSERT returns, so replays (ON CONFLICT DO NOTHING) insert no items, and items get their ids
 * in input order (the order a purchase lists them in). The same statement locks the stats rows of
 * the customers of the inserted purchases, in one global order (customer_id) so that concurrent
 * batches queue rather than deadlock, and returns their category maps for addToStats.
 */
async function insertPurchases(trx: Knex.Transaction, workspaceId: string, list: Array<{ row: Row; customerId: string }>, now: Date) {
  const res = await trx.raw(
    `WITH ins AS (
       INSERT INTO purchases (workspace_id, customer_id, order_id, occurred_at, total, currency, store_id, channel, created_at)
       SELECT ?, c, o, t, tot, cur, st, ch, ? FROM unnest(?::bigint[], ?::text[], ?::timestamptz[], ?::numeric[], ?::text[], ?::text[], ?::text[])
         AS u(c, o, t, tot, cur, st, ch)
       ON CONFLICT (workspace_id, order_id) DO NOTHING
       RETURNING id, order_id, customer_id, occurred_at
     ), items AS (
       INSERT INTO purchase_items (purchase_id, workspace_id, customer_id, occurred_at, sku, name, category, brand, quantity, unit_price)
       SELECT ins.id, ?, ins.customer_id, ins.occurred_at, s, n, cat, b, q, up
       FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int[], ?::numeric[]) WITH ORDINALITY AS u(o, s, n, cat, b, q, up, k)
       JOIN ins ON ins.order_id = u.o
       ORDER BY u.k
     ), st AS (
       SELECT s.customer_id, s.category_spend FROM (SELECT DISTINCT customer_id FROM ins ORDER BY 1) c
       CROSS JOIN LATERAL (SELECT customer_id, category_spend FROM customer_stats WHERE customer_id = c.customer_id FOR UPDATE) s
     )
     SELECT id, order_id, occurred_at, NULL::bigint AS customer_id, NULL::jsonb AS category_spend FROM ins
     UNION ALL SELECT NULL, NULL, NULL, customer_id, category_spend FROM st`,
    bindings([
      workspaceId, now,
      ...[
        list.map((x) => x.customerId), list.map((x) => x.row.orderId), list.map((x) => x.row.occurredAt), list.map((x) => x.row.total),
        list.map((x) => x.row.currency), list.map((x) => x.row.storeId), list.map((x) => x.row.channel),
      ].map(pgArray),
      workspaceId, ...itemArrays(list.map((x) => x.row)),
    ]),
  );
  const newIds = new Map<string, string>();
  const occurredAt = new Map<string, Date>();
  const statsMaps = new Map<string, Record<string, number>>();
  for (const r of res.rows as Array<{ id: string | null; order_id: string | null; occurred_at: Date | null; customer_id: string | null; category_spend: Record<string, number> | null }>) {
    if (r.id !== null) {
      newIds.set(r.order_id!, String(r.id));
      occurredAt.set(r.order_id!, r.occurred_at!);
    } else statsMaps.set(String(r.customer_id), r.category_spend ?? {});
  }
  return { newIds, occurredAt, statsMaps };
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

/** Adds inserted purchases to their customers' stats rows, locked and read by insertPurchases. */
async function addToStats(trx: Knex.Transaction, list: Array<{ row: Row; customerId: string }>, maps: Map<string, Record<string, number>>, now: Date) {
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
  const ids = [...per.keys()].sort(byBigintId);
  // The rows are locked: merging the maps and picking the top category here is exact, and spares
  // Postgres two SQL-function calls per row (they were half the UPDATE's cost).
  const withCats = ids.filter((id) => Object.keys(per.get(id)!.cats).length);
  const merged = new Map(withCats.map((id) => [id, mergeCategories(maps.get(id) ?? {}, per.get(id)!.cats)]));
  const a = ids.map((id) => per.get(id)!);
  const cents = (c: number) => (c / 100).toFixed(2);
  await trx.raw(
    `UPDATE customer_stats s SET ${statsAdd('v', 'v')}
     FROM unnest(?::bigint[], ?::int[], ?::numeric[], ?::timestamptz[], ?::timestamptz[], ?::int[], ?::numeric[], ?::jsonb[], ?::text[])
       AS v(customer_id, n, spent, first_at, last_at, n90, spent90, cats, top)
     WHERE s.customer_id = v.customer_id`,
    bindings([
      now,
      ...[
        ids, a.map((x) => x.n), a.map((x) => cents(x.spent)), a.map((x) => new Date(x.first).toISOString()), a.map((x) => new Date(x.last).toISOString()),
        a.map((x) => x.n90), a.map((x) => cents(x.spent90)),
        ids.map((id) => (merged.has(id) ? JSON.stringify(merged.get(id)!.map) : null)),
        ids.map((id) => merged.get(id)?.top ?? null),
      ].map(pgArray),
    ]),
  );
}

/**
 * A customer's category map plus a purchase's (in cents), and its arg-max: the highest spend,
 * ties to the first key in code-point order (hark_top_key's order under the C collation).
 */
export function mergeCategories(stored: Record<string, number>, addCents: Record<string, number>) {
  const map: Record<string, number> = { ...stored };
  for (const [k, c] of Object.entries(addCents)) map[k] = (Math.round(Number(map[k] ?? 0) * 100) + c) / 100;
  let top: string | null = null;
  for (const [k, v] of Object.entries(map)) {
    const best = top === null ? undefined : Number(map[top]);
    if (best === undefined || Number(v) > best || (Number(v) === best && k < top!)) top = k;
  }
  return { map, top };
}
