import { recreateBenchDatabase } from './harness';
import type { Bench, Metric } from './harness';
import { createDb, migrateLatest, type Db } from '../src/db';
import { ingestPurchases } from '../src/purchases/service';
import type { PurchaseInput } from '../src/purchases/schema';

/**
 * Table and index sizes per row, extrapolated to 10M customers and 100M messages (README,
 * Scaling). Seeds its own database (hark_bench_sizes, or BENCH_DATABASE_URL): customers,
 * customer_stats, purchases and purchase_items through the real ingest path (ingestPurchases, in
 * batches of 1000: 3 purchases of 2 items per customer), then the customers' profile fields, then
 * 10 messages per customer shaped as fan-out and dispatch leave them (send-time snapshot, address,
 * provider id, timestamps; 10% held out) and their message_events as dispatch, tracking and
 * attribution append them (sent + delivered per email, an open for a third, a click with its URL
 * for a seventh, a conversion for a fifth). After VACUUM ANALYZE it reads pg_relation_size (heap),
 * the TOAST and maps (total - heap - indexes), pg_indexes_size and pg_total_relation_size of each
 * table (summed over partitions) divided by its rows. Per-customer tables scale to 10M customers,
 * per-message tables to 100M messages.
 */
const URL_ = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_sizes';
const CUSTOMER_TABLES = ['customers', 'customer_stats', 'purchases', 'purchase_items'];
const MESSAGE_TABLES = ['messages', 'message_events'];
const TARGET_CUSTOMERS = 10_000_000;
const TARGET_MESSAGES = 100_000_000;

export interface TableSize {
  table: string;
  rows: number;
  heap: number;
  other: number; // TOAST, free space and visibility maps
  indexes: number;
  total: number;
}

/** Sizes of a table, its partitions included, in bytes, with its row count. */
export async function tableSize(db: Db, table: string): Promise<TableSize> {
  const { rows } = await db.raw(
    `SELECT coalesce(sum(pg_relation_size(relid)), 0)::bigint AS heap, coalesce(sum(pg_indexes_size(relid)), 0)::bigint AS indexes,
            coalesce(sum(pg_total_relation_size(relid)), 0)::bigint AS total
       FROM (SELECT relid FROM pg_partition_tree(?::regclass) UNION SELECT ?::regclass) r`, // a partitioned parent has no storage of its own; a plain table has no tree
    [table, table],
  );
  const { rows: n } = await db.raw(`SELECT count(*)::bigint AS n FROM ${table}`); // a name from the lists above
  const r = rows[0] as { heap: string; indexes: string; total: string };
  return { table, rows: Number(n[0].n), heap: Number(r.heap), indexes: Number(r.indexes), total: Number(r.total), other: Number(r.total) - Number(r.heap) - Number(r.indexes) };
}

const gb = (bytes: number) => bytes / 1024 ** 3;

async function seed(db: Db, wsId: string, customers: number, log: (m: string) => void) {
  const t0 = new Date('2026-01-01T00:00:00Z');
  for (let first = 0; first < customers; first += 333) {
    const batch: PurchaseInput[] = [];
    for (let c = first; c < Math.min(customers, first + 333); c++) {
      for (let k = 0; k < 3; k++) {
        batch.push({
          orderId: `o${c}-${k}`,
          customer: { externalId: `c${c}`, email: `customer${c}@example.com` },
          occurredAt: new Date(t0.getTime() - (k * 40 + (c % 30)) * 86400_000).toISOString(),
          total: 20 + (c % 80) + k,
          currency: 'EUR',
          storeId: `store-${c % 300}`,
          channel: c % 4 ? 'pos' : 'online',
          items: [
            { sku: `sku-${(c * 7 + k) % 5000}`, name: `Product ${(c * 7 + k) % 5000}`, category: ['shoes', 'shirts', 'bags', 'hats'][c % 4], brand: `brand ${c % 40}`, quantity: 1, unitPrice: 10 + (c % 40) },
            { sku: `sku-${(c * 11 + k) % 5000}`, name: `Product ${(c * 11 + k) % 5000}`, category: 'socks', brand: `brand ${c % 40}`, quantity: 2, unitPrice: 5 + (c % 20) },
          ],
        } as PurchaseInput);
      }
    }
    await ingestPurchases(db, wsId, batch, t0);
    if (first % 20_000 < 333) log(`ingested ${Math.min(customers, first + 333)} customers`);
  }
  await db.raw(
    `UPDATE customers SET first_name = 'First' || (id % 997), last_name = 'Lastname' || (id % 1999), phone = '+4915' || lpad((id % 100000000)::text, 9, '0'),
            city = 'city ' || (id % 200), country = 'DE', postal_code = lpad((id % 99999)::text, 5, '0'), gender = (ARRAY['female','male'])[1 + id % 2],
            birth_date = date '1960-01-01' + (id % 15000)::int, email_consent = 'subscribed'
      WHERE workspace_id = ?`,
    [wsId],
  );
  const [tpl] = await db('templates').insert({ workspace_id: wsId, name: 't', channel: 'email', subject: 's', body: 'b', format: 'text' }).returning('id');
  await db.raw('CREATE TEMP TABLE bench_c AS SELECT id, row_number() OVER (ORDER BY id) AS n FROM customers WHERE workspace_id = ?', [wsId]);
  for (let k = 0; k < 10; k++) {
    const [c] = await db('campaigns').insert({ workspace_id: wsId, name: `campaign ${k}`, channel: 'email', template_id: tpl.id, segment_ids: [], holdout_percent: 10, status: 'sent', started_at: t0 }).returning('id');
    await db.raw(
      `INSERT INTO messages (workspace_id, campaign_id, customer_id, channel, template_id, variant, address, status, skip_reason, provider_id, attempts, snapshot, created_at, claimed_at, sent_at, delivered_at, opened_at, clicked_at, converted_at, revenue)
       SELECT ?, ?, b.id, 'email', ?, CASE WHEN b.n % 2 = 0 THEN 'A' END,
              CASE WHEN b.n % 10 = 0 THEN NULL ELSE 'customer' || b.n || '@example.com' END,
              CASE WHEN b.n % 10 = 0 THEN 'held_out' ELSE 'delivered' END, CASE WHEN b.n % 10 = 0 THEN 'held_out' END,
              CASE WHEN b.n % 10 = 0 THEN NULL ELSE '<' || md5(b.n::text || ?) || '@mail.example.com>' END, CASE WHEN b.n % 10 = 0 THEN 0 ELSE 1 END,
              jsonb_build_object('segmentIds', jsonb_build_array(gen_random_uuid()), 'ageBand', (ARRAY['18-24','25-34','35-44','45-54','55-64','65+'])[1 + b.n % 6],
                                 'city', 'city ' || (b.n % 200), 'gender', (ARRAY['female','male'])[1 + b.n % 2], 'firstName', 'First' || (b.n % 997)),
              t, CASE WHEN b.n % 10 <> 0 THEN t END, CASE WHEN b.n % 10 <> 0 THEN t END, CASE WHEN b.n % 10 <> 0 THEN t END,
              CASE WHEN b.n % 10 <> 0 AND b.n % 3 = 0 THEN t + interval '1 hour' END,
              CASE WHEN b.n % 10 <> 0 AND b.n % 7 = 0 THEN t + interval '2 hours' END,
              CASE WHEN b.n % 10 <> 0 AND b.n % 5 = 0 THEN t + interval '1 day' END,
              CASE WHEN b.n % 10 <> 0 AND b.n % 5 = 0 THEN 20 + b.n % 80 END
         FROM bench_c b, (SELECT ?::timestamptz AS t) x`,
      [wsId, String(c.id), tpl.id, k, new Date(t0.getTime() + k * 7 * 86400_000)],
    );
  }
  // Events as the writers append them: created_at is when they were written.
  await db.raw(
    `INSERT INTO message_events (workspace_id, message_id, type, occurred_at, data, created_at)
     SELECT m.workspace_id, m.id, e.type, e.at, e.data, e.at
       FROM messages m
       CROSS JOIN LATERAL (VALUES ('sent', m.sent_at, '{}'::jsonb), ('delivered', m.delivered_at, '{}'::jsonb), ('opened', m.opened_at, '{}'::jsonb),
                                  ('clicked', m.clicked_at, jsonb_build_object('url', 'https://shop.example.com/sale/item-' || (m.id % 500) || chr(63) || 'utm_source=hark&utm_campaign=' || m.campaign_id)),
                                  ('converted', m.converted_at, jsonb_build_object('purchaseId', (m.id * 3)::text, 'purchaseOccurredAt', m.converted_at, 'via', 'delivery'))) AS e(type, at, data)
      WHERE m.workspace_id = ? AND e.at IS NOT NULL
      ORDER BY m.id`,
    [wsId],
  );
}

export const bench: Bench = {
  description: 'table and index bytes per row after seeding, extrapolated to 10M customers and 100M messages',
  async run(ctx) {
    const customers = ctx.scale === 'full' ? 100_000 : 5_000;
    await recreateBenchDatabase(URL_);
    const db = createDb(URL_, 4);
    try {
      await migrateLatest(db);
      const [ws] = await db('workspaces').insert({ name: 'sizes' }).returning('id');
      const t = Date.now();
      await seed(db, String(ws.id), customers, ctx.log);
      ctx.log(`seeded in ${((Date.now() - t) / 1000).toFixed(1)} s`);
      await db.raw('VACUUM ANALYZE');
      const metrics: Metric[] = [];
      const lines = ['| table | rows | heap B/row | TOAST+maps B/row | indexes B/row | total B/row | at 10M customers / 100M messages |', '| --- | --- | --- | --- | --- | --- | --- |'];
      let all = 0;
      for (const table of [...CUSTOMER_TABLES, ...MESSAGE_TABLES]) {
        const s = await tableSize(db, table);
        const scale = CUSTOMER_TABLES.includes(table) ? TARGET_CUSTOMERS / customers : TARGET_MESSAGES / (customers * 10);
        const per = (b: number) => b / s.rows;
        const at = gb(s.total * scale);
        all += at;
        lines.push(`| ${table} | ${s.rows} | ${per(s.heap).toFixed(0)} | ${per(s.other).toFixed(0)} | ${per(s.indexes).toFixed(0)} | ${per(s.total).toFixed(0)} | ${at.toFixed(1)} GB (${gb(s.indexes * scale).toFixed(1)} GB indexes) |`);
        metrics.push({ name: `${table}: bytes per row (total)`, value: Math.round(per(s.total)), unit: 'B' });
        metrics.push({ name: `${table}: at ${CUSTOMER_TABLES.includes(table) ? '10M customers' : '100M messages'}`, value: Number(at.toFixed(1)), unit: 'GB' });
      }
      lines.push(`| all six | | | | | | ${all.toFixed(1)} GB |`);
      ctx.log('\n' + lines.join('\n'));
      return metrics;
    } finally {
      await db.destroy();
    }
  },
};
