import { ChildProcess, fork } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pg from 'pg';

/**
 * The ingest bench's baseline for single purchases: a bare express + pg server, as one would write
 * it without hark, in a child process of its own (as hark's API would be). Per request, in one
 * transaction on a pool of the same size as hark's: find the customer by externalId, insert the
 * purchase (idempotent by orderId) and its items, and add it to the customer's stats row (count,
 * spend, first/last, 90-day figures, category map and top category), then commit. A fixed bearer
 * token stands in for the key check, express.json() for the body parsing; no validation beyond
 * what Postgres refuses.
 */
export interface BareSpec {
  databaseUrl: string;
  workspaceId: string;
  token: string;
  poolMax: number;
}

const DAY = 86400000;

async function serve(spec: BareSpec): Promise<number> {
  const pool = new pg.Pool({ connectionString: spec.databaseUrl, max: spec.poolMax });
  const app = express();
  app.use(express.json({ limit: '2mb' }));
  app.post('/v1/purchases', async (req, res) => {
    if (req.headers.authorization !== `Bearer ${spec.token}`) return void res.status(401).json({ error: 'unauthorized' });
    const p = req.body as {
      orderId: string; customer: { externalId: string }; occurredAt: string; total: number; currency?: string; channel?: string; storeId?: string;
      items?: Array<{ sku: string; name?: string; category?: string; brand?: string; quantity: number; unitPrice: number }>;
    };
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const c = await client.query('SELECT id FROM customers WHERE workspace_id = $1 AND external_id = $2 FOR KEY SHARE', [spec.workspaceId, p.customer.externalId]);
      let customerId = c.rows[0]?.id as string | undefined;
      if (!customerId) {
        const made = await client.query(
          `INSERT INTO customers (workspace_id, external_id) VALUES ($1, $2)
           ON CONFLICT (workspace_id, external_id) DO UPDATE SET updated_at = now() RETURNING id`,
          [spec.workspaceId, p.customer.externalId],
        );
        customerId = made.rows[0].id as string;
        await client.query('INSERT INTO customer_stats (customer_id, workspace_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [customerId, spec.workspaceId]);
      }
      const ins = await client.query(
        `INSERT INTO purchases (workspace_id, customer_id, order_id, occurred_at, total, currency, store_id, channel)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (workspace_id, order_id) DO NOTHING RETURNING id`,
        [spec.workspaceId, customerId, p.orderId, p.occurredAt, p.total, p.currency ?? null, p.storeId ?? null, p.channel ?? null],
      );
      if (ins.rowCount) {
        const id = ins.rows[0].id as string;
        const items = p.items ?? [];
        if (items.length) {
          const values = items.map((_, k) => `($1, $2, $3, $4, $${5 + k * 6}, $${6 + k * 6}, $${7 + k * 6}, $${8 + k * 6}, $${9 + k * 6}, $${10 + k * 6})`);
          await client.query(
            `INSERT INTO purchase_items (purchase_id, workspace_id, customer_id, occurred_at, sku, name, category, brand, quantity, unit_price) VALUES ${values.join(', ')}`,
            [id, spec.workspaceId, customerId, p.occurredAt, ...items.flatMap((i) => [i.sku, i.name ?? null, i.category ?? null, i.brand ?? null, i.quantity, i.unitPrice])],
          );
        }
        const cats: Record<string, number> = {};
        for (const i of items) if (i.category) cats[i.category] = (cats[i.category] ?? 0) + i.quantity * i.unitPrice;
        const t = Date.parse(p.occurredAt);
        const in90 = t > Date.now() - 90 * DAY && t <= Date.now();
        await client.query(
          `UPDATE customer_stats s SET
             purchase_count = s.purchase_count + 1, total_spent = s.total_spent + $2,
             first_purchase_at = LEAST(s.first_purchase_at, $3), last_purchase_at = GREATEST(s.last_purchase_at, $3),
             purchases_90d = s.purchases_90d + $4, spent_90d = s.spent_90d + $5,
             category_spend = m.map,
             top_category = (SELECT key FROM jsonb_each_text(m.map) ORDER BY value::numeric DESC, key COLLATE "C" LIMIT 1),
             updated_at = now()
           FROM (SELECT s2.category_spend || coalesce((SELECT jsonb_object_agg(key, coalesce((s2.category_spend->>key)::numeric, 0) + value::numeric)
                                                         FROM jsonb_each_text($6::jsonb)), '{}') AS map
                   FROM customer_stats s2 WHERE s2.customer_id = $1) m
           WHERE s.customer_id = $1`,
          [customerId, p.total, p.occurredAt, in90 ? 1 : 0, in90 ? p.total : 0, JSON.stringify(cats)],
        );
        await client.query('COMMIT');
        return void res.status(201).json({ id, externalId: p.customer.externalId });
      }
      const old = await client.query('SELECT id FROM purchases WHERE workspace_id = $1 AND order_id = $2', [spec.workspaceId, p.orderId]);
      await client.query('COMMIT');
      res.status(200).json({ id: old.rows[0]?.id ?? null, externalId: p.customer.externalId });
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      res.status(500).json({ error: String((err as Error).message) });
    } finally {
      client.release();
    }
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return (server.address() as AddressInfo).port;
}

/** Starts the bare server in a child process; resolves with its base URL and a stop function. */
export function startBareServer(spec: BareSpec): Promise<{ base: string; child: ChildProcess; stop(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.once('message', (m: { port: number }) =>
      resolve({
        base: `http://127.0.0.1:${m.port}`,
        child,
        stop: () =>
          new Promise<void>((r) => {
            child.once('exit', () => r());
            child.kill('SIGTERM');
          }),
      }),
    );
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bare server exited with ${code}`)));
    child.send(spec);
  });
}

if (require.main === module && process.send) {
  process.once('message', (spec: BareSpec) => {
    serve(spec).then(
      (port) => process.send!({ port }),
      (err: Error) => {
        process.stderr.write(`bare server: ${err.stack}\n`);
        process.exit(1);
      },
    );
  });
}

/**
 * The bare server's workspace: a copy of `from`'s customers and their stats rows, so that it finds
 * the same customers, with category maps as large, as hark does in the single phase.
 */
export async function bareWorkspace(db: import('../src/db').Db, from: string): Promise<string> {
  const [ws] = await db('workspaces').insert({ name: 'bench bare' }).returning('id');
  await db.raw('INSERT INTO customers (workspace_id, external_id) SELECT ?, external_id FROM customers WHERE workspace_id = ?', [ws.id, from]);
  await db.raw(
    `INSERT INTO customer_stats (customer_id, workspace_id, purchase_count, total_spent, first_purchase_at, last_purchase_at, purchases_90d, spent_90d, category_spend, top_category)
     SELECT n.id, n.workspace_id, s.purchase_count, s.total_spent, s.first_purchase_at, s.last_purchase_at, s.purchases_90d, s.spent_90d, s.category_spend, s.top_category
       FROM customers o JOIN customer_stats s ON s.customer_id = o.id JOIN customers n ON n.workspace_id = ? AND n.external_id = o.external_id
      WHERE o.workspace_id = ?`,
    [ws.id, from],
  );
  return String(ws.id);
}
