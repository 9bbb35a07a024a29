import type { AddressInfo } from 'node:net';
import { buildApp } from '../src/app';
import type { Deps } from '../src/deps';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb, migrateLatest } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { QUEUE_NAMES, Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { startConnectorWorker } from '../workers/connector-worker';
import { Bench, Metric, percentile, recreateBenchDatabase } from './harness';
import { poster } from './ingest-load';
import { runConnectorLoad } from './connectors-load';
import { startWorkerProcess } from './connectors-worker';

/**
 * npm run bench -- connectors [--scale small|full]
 * The real app and the connector worker in one process (ROLE=all), on their own database
 * (hark_bench_connectors, dropped and re-created); the load from a child process
 * (bench/connectors-load.ts). Phases:
 *  - connector: 20,000 signed Shopify orders/create deliveries from 16 concurrent clients; the answer
 *    latencies, and the time from the last answer until all 20,000 purchases are stored;
 *  - batch: the same orders, as hark purchases, to POST /v1/purchases/batch (1000 a request, 4
 *    clients) in a workspace of their own, for the throughput beside it.
 */
const BENCH_DB = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_connectors';
const SCALES = { small: { orders: 2_000, customers: 1_000 }, full: { orders: 20_000, customers: 5_000 } } as const;
const SECRET = 'shpss_bench_0123456789abcdef';

export const bench: Bench = {
  description: 'Shopify webhooks through a connector (answer latency, mapping lag) beside the batch API on the same orders',
  async run(ctx) {
    const s = SCALES[ctx.scale];
    await recreateBenchDatabase(BENCH_DB);
    const config = loadConfig({ ...process.env, NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', DATABASE_URL: BENCH_DB, HARK_ADMIN_TOKEN: 'bench-operator-token-0123456789', HARK_SIGNING_SECRET: 'bench-signing-secret-0123456789abcdef', LOG_LEVEL: 'silent', PORT: '0', DB_POOL_MAX: '20' });
    const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX);
    await migrateLatest(db);
    const redis = createRedis(config.REDIS_URL);
    const prefix = `hark-bench-connectors-${process.pid}`;
    const deps: Deps = { config, db, redis, queues: new Queues(redis, prefix), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
    const server = buildApp(deps).listen(0);
    await new Promise((r) => server.once('listening', r));
    // BENCH_WORKER=process: the worker in a process of its own (ROLE=api beside ROLE=worker); default one process (ROLE=all).
    const own = process.env.BENCH_WORKER === 'process';
    const worker = own ? null : await startConnectorWorker(deps);
    const child = own ? await startWorkerProcess({ DATABASE_URL: BENCH_DB, HARK_ADMIN_TOKEN: config.HARK_ADMIN_TOKEN, HARK_SIGNING_SECRET: config.HARK_SIGNING_SECRET!, LOG_LEVEL: 'silent', DB_POOL_MAX: '20' }, prefix) : null;
    if (process.env.BENCH_PAUSE_WORKER) await worker?.pause();
    ctx.log(`worker: ${own ? 'own process' : 'in the API process'}`);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const admin = (key: string) => poster(base, key, 1);
    const count = async (ws: string) => Number((await db('purchases').where({ workspace_id: ws }).count({ n: '*' }))[0]!.n);
    try {
      const newWs = async (name: string) => JSON.parse((await admin(config.HARK_ADMIN_TOKEN)('/v1/workspaces', { name })).text) as { apiKey: string; id: string };
      const shop = await newWs('bench shop');
      const made = JSON.parse((await admin(shop.apiKey)('/v1/connectors', { type: 'shopify', name: 'bench', secret: SECRET })).text) as { id: string };
      const target = { kind: 'connector' as const, path: `/connect/shopify/${made.id}`, secret: SECRET };

      // Warm-up (JIT, pools, plans), not measured; then statistics, as autovacuum would have them.
      await runConnectorLoad({ base, target, prefix: 'warm', orders: 300, connections: 16, customers: s.customers });
      for (const end = Date.now() + (process.env.BENCH_PAUSE_WORKER ? 0 : 20_000); (await count(shop.id)) < 300 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 100));
      await db.raw('ANALYZE');
      const warm = await count(shop.id);

      ctx.log(`connector: ${s.orders} signed orders/create deliveries, 16 clients`);
      await db.raw('CHECKPOINT');
      const cpu0 = process.cpuUsage();
      const load = await runConnectorLoad({ base, target, prefix: 'order', orders: s.orders, connections: 16, customers: s.customers });
      const answerCpu = process.cpuUsage(cpu0);
      let stored = await count(shop.id);
      while (stored < warm + s.orders && Date.now() - load.lastAnswerAt < (process.env.BENCH_PAUSE_WORKER ? 0 : 120_000)) {
        await new Promise((r) => setTimeout(r, 50));
        stored = await count(shop.id);
      }
      const lagSeconds = (Date.now() - load.lastAnswerAt) / 1000;
      const allCpu = process.cpuUsage(cpu0);
      const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;
      const outcomes = (await db('connector_deliveries').where({ connector_id: made.id }).groupBy('outcome').select('outcome').count({ n: '*' })) as Array<{ outcome: string; n: string }>;
      ctx.log(`outcomes: ${outcomes.map((o) => `${o.outcome} ${o.n}`).join(', ')}; ${stored - warm} purchases stored ${lagSeconds.toFixed(2)} s after the last answer`);

      ctx.log(`batch: the same ${s.orders} orders to POST /v1/purchases/batch, 4 clients`);
      const other = await newWs('bench batch');
      await db.raw('CHECKPOINT');
      const batch = await runConnectorLoad({ base, target: { kind: 'batch', key: other.apiKey }, prefix: 'order', orders: s.orders, connections: 4, customers: s.customers });
      const batchStored = await count(other.id);

      const p99 = percentile(load.latencies, 99);
      const endToEnd = s.orders / (load.seconds + Math.max(0, lagSeconds));
      const batchRate = batchStored / batch.seconds;
      const metrics: Metric[] = [
        { name: 'delivery answer p99', value: p99, unit: 'ms', target: { text: '< 100 ms', met: p99 < 100 } },
        { name: 'delivery answer p50', value: percentile(load.latencies, 50), unit: 'ms' },
        { name: 'deliveries answered/s', value: s.orders / load.seconds, unit: 'deliveries/s' },
        { name: 'all purchases stored after the last answer', value: lagSeconds, unit: 's', target: { text: '<= 10 s, all stored', met: lagSeconds <= 10 && stored - warm === s.orders } },
        { name: 'connector purchases/s (first request to all stored)', value: endToEnd, unit: 'purchases/s', baseline: { name: 'batch API', value: batchRate } },
        { name: 'batch API purchases/s (same orders)', value: batchRate, unit: 'purchases/s' },
        // CPU of this process (API and worker) per delivery: steadier than wall-clock figures on a shared machine.
        // With BENCH_WORKER=process these count the API process only.
        { name: 'server CPU per delivery while answering', value: cpuMs(answerCpu) / s.orders, unit: 'ms' },
        { name: 'server CPU per delivery, answer to stored', value: cpuMs(allCpu) / s.orders, unit: 'ms' },
      ];
      return metrics;
    } finally {
      await worker?.close();
      await child?.stop();
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      const q = deps.queues.get(QUEUE_NAMES.connectors);
      await q.obliterate({ force: true }).catch(() => undefined);
      await deps.queues.close();
      await db.destroy();
      await redis.quit();
    }
  },
};
