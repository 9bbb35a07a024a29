import { ChildWorker, childDeps, serveWorkerInChild, workerInChild } from './fork';
import type { Db } from '../src/db';
import { loadConfig } from '../src/config';
import { Queues, QUEUE_NAMES } from '../src/queues';
import { startResultsWorker } from '../workers/results-worker';
import { makePurchase } from './ingest-load';

/**
 * The ingest bench's attribution freshness: the results worker runs in a child process of its own
 * (as with ROLE=worker) on its production schedule (every 60 s), woken by the API after purchases
 * commit. Before the single phase, a campaign's messages are delivered (an hour before) to the
 * customers of every `every`-th single purchase, so that each of those purchases converts one;
 * a poller then notes when each conversion becomes visible to the reports (messages.converted_at,
 * which the report aggregates), and the delay is taken from the moment the load generator sent
 * the purchase (before its commit: the figure errs long, by at most the request's latency).
 */
export interface WorkerSpec {
  databaseUrl: string;
  queuePrefix: string;
}

/** Starts the results worker in a child process; resolves once it is ready, with a stop function. */
export function startAttributionWorker(spec: WorkerSpec): Promise<ChildWorker> {
  return workerInChild(__filename, spec);
}

/** The queue's jobs of earlier runs (wake-ups nobody took) would run at the worker's start. */
export async function clearResultsQueue(queues: Queues): Promise<void> {
  await queues.get(QUEUE_NAMES.results).obliterate({ force: true });
}

/** A sent campaign with one delivered email per sampled single purchase's customer; returns the campaign id and the sampled request indexes. */
export async function deliverSample(db: Db, workspaceId: string, requests: number, customers: number, every: number): Promise<{ campaignId: string; sample: Map<string, number> }> {
  const [tpl] = await db('templates').insert({ workspace_id: workspaceId, name: 'bench', channel: 'email', subject: 's', body: 'b', format: 'text' }).returning('id');
  const [c] = await db('campaigns')
    .insert({ workspace_id: workspaceId, name: 'bench freshness', channel: 'email', template_id: tpl.id, segment_ids: [], status: 'sent', started_at: new Date('2025-12-01T00:00:00Z') })
    .returning('id');
  const sample = new Map<string, number>(); // orderId -> request index
  const rows: Array<{ ext: string; at: Date }> = [];
  for (let i = 0; i < requests; i += every) {
    const p = makePurchase('s', i, customers);
    sample.set(p.orderId, i);
    rows.push({ ext: p.customer, at: new Date(Date.parse(p.occurredAt) - 3600_000) });
  }
  await db.raw(
    `INSERT INTO messages (workspace_id, campaign_id, customer_id, channel, address, status, created_at, sent_at, delivered_at)
     SELECT ?, ?, c.id, 'email', 'bench-' || c.id || '@example.test', 'delivered', x.at, x.at, x.at
       FROM unnest(?::text[], ?::timestamptz[]) AS x(ext, at) JOIN customers c ON c.workspace_id = ? AND c.external_id = x.ext`,
    [workspaceId, c.id, rows.map((r) => r.ext), rows.map((r) => r.at.toISOString()), workspaceId],
  );
  return { campaignId: String(c.id), sample };
}

/** Polls the campaign's converted messages every `everyMs`; `seen` maps each converted orderId to when the poll first saw it (Date.now()). */
export function conversionPoller(db: Db, campaignId: string, everyMs = 100) {
  const seen = new Map<string, number>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const { rows } = await db.raw(
        `SELECT p.order_id FROM messages m JOIN purchases p ON p.id = m.conversion_purchase_id
          WHERE m.campaign_id = ? AND m.converted_at IS NOT NULL`,
        [campaignId],
      );
      const t = Date.now();
      for (const r of rows as Array<{ order_id: string }>) if (!seen.has(r.order_id)) seen.set(r.order_id, t);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    seen,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

serveWorkerInChild(module, async (spec: WorkerSpec) => {
  const config = loadConfig({ ...process.env, NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', DATABASE_URL: spec.databaseUrl, HARK_ADMIN_TOKEN: 'bench-operator-token-0123456789', HARK_SIGNING_SECRET: 'bench-signing-secret-0123456789-abcdef', LOG_LEVEL: 'silent' });
  const deps = childDeps(config, 4, config.WORKER_STATEMENT_TIMEOUT_MS, spec.queuePrefix);
  return { deps, worker: await startResultsWorker(deps) };
});
