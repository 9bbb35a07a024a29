import type { AddressInfo } from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { buildApp } from '../src/app';
import type { Deps } from '../src/deps';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb, migrateLatest } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { Bench, BenchContext, Metric, percentile, recreateBenchDatabase } from './harness';
import { Gen, makePurchase, poster, runLoad } from './ingest-load';
import { cpuMeter } from './ingest-cpu';
import { procCpuMs } from './proc';
import { bareWorkspace, startBareServer } from './ingest-bare';
import { clearResultsQueue, conversionPoller, deliverSample, startAttributionWorker } from './ingest-attribution';
import { runAttribution } from '../src/results/attribution';

/**
 * npm run bench -- ingest [--scale small|full]
 * The real app, in-process, on its own database (hark_bench_ingest, dropped and re-created), with
 * customer stats maintained as in production. The load comes from a child process
 * (bench/ingest-load.ts; BENCH_LOADGEN=inprocess runs it in the server's process, to compare). Three phases:
 *  - batch: POST /v1/purchases/batch, 1000 purchases of 3 items a request, 4 concurrent clients;
 *  - bare: the same single purchases into a bare express + pg server (bench/ingest-bare.ts: one
 *    transaction per request, a pool as large as hark's) in a child process, on a copy of the customers;
 *  - single: POST /v1/purchases, 32 concurrent keep-alive connections, each figure as a ratio to the
 *    bare server's; the results worker runs beside it (a child process, as ROLE=worker), woken by
 *    the API, and the delay from sending a purchase to its conversion being visible to the reports
 *    is measured on every 10th (bench/ingest-attribution.ts);
 *  - ceiling: the batch phase's rows (customers, stats, purchases, items) loaded with a bare server-side
 *    COPY into the same tables, indexes included. Each API figure is printed as a ratio to it.
 * Beside the wall-clock figures, which other work on a shared machine moves, each phase reports its
 * cost per request (bench/ingest-cpu.ts): CPU of this process (the server; it includes the load
 * generator's with BENCH_LOADGEN=inprocess), of the Postgres backends serving the bench database and
 * of the load generator, the SQL statements sent, and the WAL written (by the whole Postgres server).
 */
const BENCH_DB = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_ingest';
const QUEUE_PREFIX = 'hark-bench-ingest';
/** Every SAMPLE_EVERY-th single purchase converts a delivered message: the freshness sample. */
const SAMPLE_EVERY = 10;
/**
 * BENCH_TRACE=1: where a single purchase's time goes in this (the server's) process: the event
 * loop's delay (perf_hooks) and each SQL statement's time from send to answer (knex's events).
 */
function traceServer(db: Deps['db']) {
  if (!process.env.BENCH_TRACE) return { report: (_: BenchContext) => undefined };
  const loop = monitorEventLoopDelay({ resolution: 5 });
  loop.enable();
  const started = new Map<string, number>();
  const took: number[] = [];
  const slow: string[] = [];
  const onQuery = (q: { __knexQueryUid: string }) => started.set(q.__knexQueryUid, performance.now());
  const onResponse = (_: unknown, q: { __knexQueryUid: string; sql: string }) => {
    const t0 = started.get(q.__knexQueryUid);
    if (t0 === undefined) return;
    started.delete(q.__knexQueryUid);
    const ms = performance.now() - t0;
    took.push(ms);
    if (ms > 25) slow.push(`${ms.toFixed(1)} ms at ${Date.now()}: ${q.sql.replace(/\s+/g, ' ').slice(0, 80)}`);
  };
  db.on('query', onQuery).on('query-response', onResponse);
  return {
    report(ctx: BenchContext) {
      loop.disable();
      db.off('query', onQuery).off('query-response', onResponse);
      const ms = (ns: number) => (ns / 1e6).toFixed(1);
      ctx.log(`trace: event loop delay p50 ${ms(loop.percentile(50))} p99 ${ms(loop.percentile(99))} max ${ms(loop.max)} ms; ${took.length} statements p50 ${percentile(took, 50).toFixed(1)} p99 ${percentile(took, 99).toFixed(1)} max ${Math.max(...took).toFixed(1)} ms`);
      for (const line of slow.slice(0, 20)) ctx.log(`  slow statement ${line}`);
    },
  };
}

/** Attribution is run by hand to the end of the feed between phases, so each phase's worker starts caught up. */
const drainAttribution = async (db: Deps['db']) => {
  while ((await runAttribution(db, new Date(), { maxBatches: 1000 })).purchases > 0);
};
const SCALES = {
  small: { batchRequests: 20, singleRequests: 2_000, customers: 5_000 },
  full: { batchRequests: 200, singleRequests: 20_000, customers: 50_000 },
} as const;
/** CSV field quoting for COPY ... WITH (FORMAT csv). */
const csv = (row: (string | number | null)[]) => row.map((v) => (v === null ? '' : typeof v === 'number' ? String(v) : `"${v.replace(/"/g, '""')}"`)).join(',');

/** The ceiling: the batch phase's rows, pre-shaped, COPYed straight into the tables. */
async function copyCeiling(db: Deps['db'], workspaceId: string, purchases: Gen[], ctx: BenchContext): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'hark-bench-'));
  chmodSync(dir, 0o755); // the Postgres server process reads the files
  const [{ c, p, i }] = (await db.raw('SELECT (SELECT coalesce(max(id),0) FROM customers) + 1 AS c, (SELECT coalesce(max(id),0) FROM purchases) + 1 AS p, (SELECT coalesce(max(id),0) FROM purchase_items) + 1 AS i')).rows;
  const customerIds = new Map<string, number>();
  const stats = new Map<number, { n: number; spent: number; first: string; last: string; cats: Record<string, number> }>();
  const custRows: string[] = [];
  const purchaseRows: string[] = [];
  const itemRows: string[] = [];
  let itemId = Number(i);
  purchases.forEach((pu, k) => {
    let cid = customerIds.get(pu.customer);
    if (cid === undefined) {
      cid = Number(c) + customerIds.size;
      customerIds.set(pu.customer, cid);
      custRows.push(csv([cid, workspaceId, pu.customer]));
    }
    const pid = Number(p) + k;
    purchaseRows.push(csv([pid, workspaceId, cid, pu.orderId, pu.occurredAt, pu.total, 'USD', 'pos']));
    const s = stats.get(cid) ?? { n: 0, spent: 0, first: pu.occurredAt, last: pu.occurredAt, cats: {} };
    s.n++;
    s.spent += pu.total;
    if (pu.occurredAt < s.first) s.first = pu.occurredAt;
    if (pu.occurredAt > s.last) s.last = pu.occurredAt;
    for (const it of pu.items) {
      itemRows.push(csv([itemId++, pid, workspaceId, cid, pu.occurredAt, it.sku, it.name, it.category, it.brand, it.quantity, it.unitPrice]));
      s.cats[it.category] = (s.cats[it.category] ?? 0) + it.quantity * it.unitPrice;
    }
    stats.set(cid, s);
  });
  const statRows = [...stats].map(([cid, s]) => csv([cid, workspaceId, s.n, s.spent.toFixed(2), s.first, s.last, JSON.stringify(s.cats)]));
  const files = { customers: custRows, customer_stats: statRows, purchases: purchaseRows, purchase_items: itemRows };
  for (const [t, rows] of Object.entries(files)) writeFileSync(join(dir, `${t}.csv`), rows.join('\n') + '\n', { mode: 0o644 });
  const columns: Record<string, string> = {
    customers: 'id, workspace_id, external_id',
    customer_stats: 'customer_id, workspace_id, purchase_count, total_spent, first_purchase_at, last_purchase_at, category_spend',
    purchases: 'id, workspace_id, customer_id, order_id, occurred_at, total, currency, channel',
    purchase_items: 'id, purchase_id, workspace_id, customer_id, occurred_at, sku, name, category, brand, quantity, unit_price',
  };
  ctx.log(`COPY ${purchases.length} purchases, ${customerIds.size} customers, ${itemRows.length} items`);
  await db.raw('CHECKPOINT');
  const started = performance.now();
  // One transaction, as the API's batches are: the ceiling is what Postgres itself can take in.
  await db.transaction(async (trx) => {
    for (const t of Object.keys(files)) await trx.raw(`COPY ${t} (${columns[t]}) FROM '${join(dir, `${t}.csv`)}' WITH (FORMAT csv)`);
  });
  const seconds = (performance.now() - started) / 1000;
  // Explicit ids bypassed the sequences: move them past the copied rows so the database stays usable.
  for (const t of ['customers', 'purchases', 'purchase_items']) await db.raw(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
  rmSync(dir, { recursive: true, force: true });
  return purchases.length / seconds;
}

export const bench: Bench = {
  description: 'Purchase ingestion through the API (batch and single) against a bare COPY ceiling',
  async run(ctx) {
    const s = SCALES[ctx.scale];
    await recreateBenchDatabase(BENCH_DB);
    const config = loadConfig({ ...process.env, NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:2525', DATABASE_URL: BENCH_DB, HARK_ADMIN_TOKEN: 'bench-operator-token-0123456789', HARK_SIGNING_SECRET: 'bench-signing-secret-0123456789-abcdef', API_RATE_PER_MINUTE: '0', LOG_LEVEL: 'silent', PORT: '0', DB_POOL_MAX: '20' });
    const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX);
    await migrateLatest(db);
    const redis = createRedis(config.REDIS_URL);
    const deps: Deps = { config, db, redis, queues: new Queues(redis, QUEUE_PREFIX), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
    await clearResultsQueue(deps.queues);
    const server = buildApp(deps).listen(0);
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const made = await poster(base, config.HARK_ADMIN_TOKEN, 1)('/v1/workspaces', { name: 'bench' });
      const { apiKey, id: workspaceId } = JSON.parse(made.text) as { apiKey: string; id: string };

      // Warm-up (JIT, pool, plan cache), not measured.
      const load = { base, key: apiKey, customers: s.customers };
      await runLoad({ ...load, phase: 'warm', requests: 200, connections: 4 });
      // Postgres's autovacuum would ANALYZE these tables as they grow; it is off on the machine this
      // bench was written on, and without statistics (and with plans cached while the tables were
      // empty) the planner looked customers up by the wrong index and scanned customer_stats in
      // some runs. So the bench analyzes where autovacuum would have: here and after the batch phase.
      const analyze = () => db.raw('ANALYZE customers, customer_stats, purchases, purchase_items');
      await analyze();

      ctx.log(`batch: ${s.batchRequests} requests x 1000 purchases, 4 clients (load generator: ${process.env.BENCH_LOADGEN === 'inprocess' ? 'in process' : 'child process'})`);
      const meter = cpuMeter(db, new URL(BENCH_DB).pathname.slice(1));
      // Each phase starts from a checkpoint, so that none pays for the writes of the one before.
      await db.raw('CHECKPOINT');
      let stop = await meter();
      const batch = await runLoad({ ...load, phase: 'batch', requests: s.batchRequests, connections: 4 });
      // Backends report their buffer counters at most once a second.
      await new Promise((r) => setTimeout(r, 1500));
      const batchCpu = await stop();
      const batchRate = (s.batchRequests * 1000) / batch.seconds;

      // The batch phase's purchases are attributed before the sample's messages exist: only the
      // single phase's sampled purchases convert them.
      await drainAttribution(db);
      const { campaignId, sample } = await deliverSample(db, workspaceId, s.singleRequests, s.customers, SAMPLE_EVERY);

      ctx.log(`bare: ${s.singleRequests} requests, 32 connections, bare express + pg server`);
      const bareWs = await bareWorkspace(db, workspaceId);
      await analyze();
      const bareServer = await startBareServer({ databaseUrl: BENCH_DB, workspaceId: bareWs, token: 'bare-token', poolMax: config.DB_POOL_MAX });
      let bare;
      try {
        await runLoad({ base: bareServer.base, key: 'bare-token', customers: s.customers, phase: 'warm', requests: 200, connections: 4 });
        await db.raw('CHECKPOINT');
        bare = await runLoad({ base: bareServer.base, key: 'bare-token', customers: s.customers, phase: 'single', requests: s.singleRequests, connections: 32 });
      } finally {
        await bareServer.stop();
      }
      await drainAttribution(db);

      ctx.log(`single: ${s.singleRequests} requests, 32 connections, results worker woken by the API`);
      await analyze();
      const worker = await startAttributionWorker({ databaseUrl: BENCH_DB, queuePrefix: QUEUE_PREFIX });
      const poller = conversionPoller(db, campaignId);
      let single;
      let singleCpu;
      let workerCpuMs = 0;
      try {
        await db.raw('CHECKPOINT');
        stop = await meter();
        const trace = traceServer(db);
        const worker0 = procCpuMs(worker.pid);
        single = await runLoad({ ...load, phase: 'single', requests: s.singleRequests, connections: 32 });
        trace.report(ctx);
        await new Promise((r) => setTimeout(r, 1500));
        singleCpu = await stop();
        workerCpuMs = procCpuMs(worker.pid) - worker0;
        // The last conversions: allowed up to a minute (the schedule's period) past the load's end.
        for (let t = 0; t < 600 && poller.seen.size < sample.size; t++) await new Promise((r) => setTimeout(r, 100));
      } finally {
        await poller.stop();
        await worker.stop();
      }
      for (const r of singleCpu.byRelation.slice(0, 12)) ctx.log(`  single io ${r.name}: read ${(r.read / s.singleRequests).toFixed(2)}, hit ${(r.hit / s.singleRequests).toFixed(1)} pages/request`);
      const delays = [...sample].filter(([o]) => poller.seen.has(o)).map(([o, i]) => (poller.seen.get(o)! - single.sentAt![i]!) / 1000);
      const report = await fetch(`${base}/v1/campaigns/${campaignId}/report`, { headers: { authorization: `Bearer ${apiKey}` } }).then((r) => r.json() as Promise<{ treatment: { converted: number }; attributedThrough: string | null }>);
      ctx.log(`freshness: ${delays.length} of ${sample.size} sampled purchases converted; the report counts ${report.treatment.converted}, attributedThrough ${report.attributedThrough}`);
      const singleRate = s.singleRequests / single.seconds;
      const batchGen: Gen[] = [];
      for (let i = 0; i < s.batchRequests * 1000; i++) batchGen.push(makePurchase('b', i, s.customers));

      // The ceiling goes into a workspace of its own so that its rows do not meet the API's.
      const [ceilingWs] = await db('workspaces').insert({ name: 'bench copy' }).returning('id');
      const copyRate = await copyCeiling(db, ceilingWs.id as string, batchGen, ctx);
      const ceiling = { name: 'bare COPY', value: copyRate };

      const [{ n }] = await db('purchases').where({ workspace_id: workspaceId }).count({ n: '*' });
      ctx.log(`stored through the API: ${n} purchases`);
      const batchP99 = percentile(batch.latencies, 99);
      const singleP99 = percentile(single.latencies, 99);
      const bareRate = s.singleRequests / bare.seconds;
      const delayMax = delays.length ? Math.max(...delays) : NaN;
      const allSeen = delays.length === sample.size && report.treatment.converted === sample.size;
      const metrics: Metric[] = [
        { name: 'batch purchases/s', value: batchRate, unit: 'purchases/s', baseline: ceiling, target: { text: '>= 10000', met: batchRate >= 10_000 } },
        { name: 'batch p99 per request', value: batchP99, unit: 'ms', target: { text: '< 250 ms', met: batchP99 < 250 } },
        { name: 'batch p50 per request', value: percentile(batch.latencies, 50), unit: 'ms' },
        { name: 'single requests/s', value: singleRate, unit: 'purchases/s', baseline: { name: 'bare express + pg', value: bareRate }, target: { text: 'ratio >= 1.5', met: singleRate >= 1.5 * bareRate } },
        { name: 'single p99', value: singleP99, unit: 'ms', baseline: { name: 'bare express + pg', value: percentile(bare.latencies, 99) }, target: { text: '<= 30 ms', met: singleP99 <= 30 } },
        { name: 'single p50', value: percentile(single.latencies, 50), unit: 'ms', baseline: { name: 'bare express + pg', value: percentile(bare.latencies, 50) } },
        { name: 'single max', value: Math.max(...single.latencies), unit: 'ms', baseline: { name: 'bare express + pg', value: Math.max(...bare.latencies) } },
        { name: 'bare express + pg requests/s', value: bareRate, unit: 'purchases/s' },
        { name: 'attribution delay p50 (send to report)', value: percentile(delays, 50), unit: 's' },
        { name: 'attribution delay p99', value: percentile(delays, 99), unit: 's' },
        { name: 'attribution delay max', value: delayMax, unit: 's', target: { text: '<= 10 s, every sampled purchase', met: allSeen && delayMax <= 10 } },
        { name: 'sampled purchases converted', value: delays.length, unit: `of ${sample.size}` },
        { name: 'bare COPY purchases/s', value: copyRate, unit: 'purchases/s' },
        // CPU and statements per request: steadier than wall-clock figures on a shared machine.
        { name: 'batch server CPU per request', value: batchCpu.serverMs / s.batchRequests, unit: 'ms' },
        { name: 'batch Postgres CPU per request', value: batchCpu.postgresMs / s.batchRequests, unit: 'ms' },
        { name: 'batch SQL statements per request', value: batchCpu.statements / s.batchRequests, unit: 'statements' },
        { name: 'batch load generator CPU per request', value: batch.loadCpuMs / s.batchRequests, unit: 'ms' },
        { name: 'batch WAL per request (whole server)', value: batchCpu.walBytes / 1024 / s.batchRequests, unit: 'KiB' },
        { name: 'single server CPU per request', value: singleCpu.serverMs / s.singleRequests, unit: 'ms' },
        { name: 'single Postgres CPU per request', value: singleCpu.postgresMs / s.singleRequests, unit: 'ms' },
        { name: 'single SQL statements per request', value: singleCpu.statements / s.singleRequests, unit: 'statements' },
        { name: 'single load generator CPU per request', value: single.loadCpuMs / s.singleRequests, unit: 'ms' },
        { name: 'single attribution worker CPU per request', value: workerCpuMs / s.singleRequests, unit: 'ms' },
        { name: 'single WAL per request (whole server)', value: singleCpu.walBytes / 1024 / s.singleRequests, unit: 'KiB' },
        // Shared-buffer misses and backend writes: whether the phase ran out of shared_buffers.
        { name: 'single buffer misses per request', value: singleCpu.blocksRead / s.singleRequests, unit: 'pages' },
        { name: 'single buffer hits per request', value: singleCpu.blocksHit / s.singleRequests, unit: 'pages' },
        { name: 'single backend buffer writes per request (whole server)', value: singleCpu.backendWrites / s.singleRequests, unit: 'pages' },
        { name: 'batch buffer misses per request', value: batchCpu.blocksRead / s.batchRequests, unit: 'pages' },
        { name: 'batch backend buffer writes per request (whole server)', value: batchCpu.backendWrites / s.batchRequests, unit: 'pages' },
      ];
      return metrics;
    } finally {
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      await deps.queues.close();
      await db.destroy();
      await redis.quit();
    }
  },
};
