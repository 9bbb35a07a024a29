import { ChildProcess, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { recreateBenchDatabase } from './harness';
import type { Bench, Metric } from './harness';
import { cpuOf, machineCpu, ownCpuMs, pidsWhere } from './proc';
import { startWorkerProcess, stopChild } from './worker-process';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb, Db, migrateLatest } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues, QUEUE_NAMES } from '../src/queues';
import { createRedis } from '../src/redis';
import { sendNow } from '../src/campaigns/service';
import { createWorkspace, updateSettings } from '../src/workspaces/repo';
import { startSmtpPeer, SmtpPeer } from '../test/helpers/smtp-peer';
import { ensureRedisCluster } from '../test/helpers/redis-cluster';

/**
 * Issue 20: the same email campaign on the single Redis (REDIS_URL's default) and on the local
 * Redis Cluster (test/helpers/redis-cluster.ts: 3 masters + 3 replicas on 7101-7106), with one and
 * with three production worker processes (`node dist/src/main.js`, ROLE=worker), each timed from
 * the send request (fan-out included) to the last message at a local smtp-server. Targets: the
 * cluster costs at most 10% against the single Redis; three workers reach 2.5x one worker while the
 * SMTP sink is not the bottleneck.
 * Two sinks: one that answers each message at once (the workers are then CPU-bound, and on a
 * 2-core machine three cannot outrun one), and one that answers the end of each message's data
 * after BENCH_SMTP_LATENCY_MS (default 40 ms), as a real relay does: one worker, with its shipped
 * pool of SMTP_POOL_CONNECTIONS (8) connections, is then latency-bound, and the 1-vs-3 comparison
 * is run on the cluster there too.
 * Per run the CPU of each part is printed, from /proc, in % of one core: the worker processes
 * (their sender threads included), the bench database's Postgres backends, the Redis processes (shared
 * with anything else on them), the sink (this bench process: near 100% it would be the
 * bottleneck), and the machine's busy share of all cores.
 * Full: 100,000 emails per run at once, 30,000 through the relay; small: 10,000 and 4,000. Own
 * database hark_bench_cluster.
 */
const URL_ = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_cluster';
const SINGLE = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function seed(db: Db, n: number, tag: string) {
  const ws = await createWorkspace(db, { name: `bench ${tag}` });
  await updateSettings(db, ws.id, { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
  await db.raw(
    `INSERT INTO customers (workspace_id, external_id, email, city, email_consent)
     SELECT ?, 'c' || g, 'c' || g || '@${tag}.example', 'Riga', 'subscribed' FROM generate_series(1, ?) g`,
    [ws.id, n],
  );
  await db.raw('ANALYZE customers');
  const [seg] = await db('segments').insert({ workspace_id: ws.id, name: 'riga', kind: 'dynamic', definition: JSON.stringify({ field: 'city', op: 'eq', value: 'Riga' }) }).returning('id');
  const [tpl] = await db('templates').insert({ workspace_id: ws.id, name: 't', channel: 'email', subject: 'Hello {{ customer.firstName }}', body: '<p>Spring sale</p>', format: 'html' }).returning('id');
  // A draft until its run: the workers' campaign tick would otherwise start it at their boot.
  const [c] = await db('campaigns').insert({ workspace_id: ws.id, name: 'bench', channel: 'email', template_id: tpl.id, segment_ids: [seg.id], status: 'draft' }).returning('id');
  return { workspaceId: String(ws.id), campaignId: String(c.id) };
}


const secs = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function spawnWorker(env: Record<string, string>): Promise<ChildProcess> {
  return startWorkerProcess([], { ...process.env, ROLE: 'worker', PORT: '0', LOG_LEVEL: 'info', ...env });
}


interface Run {
  rate: number;
  sinkCpu: number;
  machineBusy: number;
  /** CPU over the run in cores (1 = one core busy all along): the workers (each with its sender thread), this database's Postgres backends, the Redis processes. */
  workersCpu: number;
  postgresCpu: number;
  redisCpu: number;
}

/** Postgres backends serving the bench database (`postgres: <cluster>: <user> <db> <client> <state>`). */
const DB_NAME = new URL(URL_).pathname.slice(1);
const backends = () => pidsWhere((c) => c.startsWith('postgres: ') && c.split(' ').includes(DB_NAME));
/** The redis-server processes of this Redis or cluster URL (shared with whatever else uses them). */
const redisPids = (url: string) => {
  const ports = [...url.matchAll(/:(\d+)/g)].map((m) => m[1]!);
  // A cluster URL names one seed node; its nodes are 7101-7106 (test/helpers/redis-cluster.ts).
  const all = url.includes('+cluster') ? ['7101', '7102', '7103', '7104', '7105', '7106'] : ports;
  return () => pidsWhere((c) => c.startsWith('redis-server ') && all.some((p) => c.includes(`:${p}`)));
};
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;

async function runOnce(db: Db, smtp: SmtpPeer, redisUrl: string, workers: number, n: number, tag: string, log: (m: string) => void): Promise<Run> {
  const { workspaceId, campaignId } = await seed(db, n, tag);
  const config = loadConfig({ DATABASE_URL: URL_, REDIS_URL: redisUrl, SMTP_URL: smtp.url, HARK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', LOG_LEVEL: 'silent', EMAIL_RATE_PER_SECOND: '100000' });
  const redis = createRedis(redisUrl);
  const queues = new Queues(redis, `hbc-${tag}-${Date.now()}`);
  const deps = { config, db, redis, queues, clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
  const env = { DATABASE_URL: URL_, REDIS_URL: redisUrl, QUEUE_PREFIX: queues.prefix, SMTP_URL: smtp.url, EMAIL_RATE_PER_SECOND: '100000', HARK_ADMIN_TOKEN: config.HARK_ADMIN_TOKEN };
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < workers; i++) children.push(await spawnWorker(env));
    await db.raw('CHECKPOINT');
    const before = smtp.count();
    const cpu0 = machineCpu();
    const own0 = ownCpuMs();
    const workerCpu = cpuOf(() => children.map((c) => c.pid!));
    const pgCpu = cpuOf(backends);
    const redisCpu = cpuOf(redisPids(redisUrl));
    const t0 = process.hrtime.bigint();
    await sendNow(deps, workspaceId, campaignId);
    while (smtp.count() - before < n) {
      if (secs(t0) > 1800) throw new Error(`${tag}: only ${smtp.count() - before} of ${n} after 30 min`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const wall = secs(t0);
    const cpu1 = machineCpu();
    const cores = (ms: number) => ms / 1000 / wall;
    const run: Run = {
      rate: n / wall,
      sinkCpu: cores(ownCpuMs() - own0),
      machineBusy: (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total),
      workersCpu: cores(workerCpu.since()),
      postgresCpu: cores(pgCpu.since()),
      redisCpu: cores(redisCpu.since()),
    };
    log(
      `${tag}: ${run.rate.toFixed(0)} msg/s in ${wall.toFixed(1)} s; CPU in % of one core: workers ${pct(run.workersCpu)}, Postgres backends ${pct(run.postgresCpu)}, ` +
        `Redis ${pct(run.redisCpu)}, sink (bench process) ${pct(run.sinkCpu)}; machine busy ${pct(run.machineBusy)} of ${cpus().length} cores`,
    );
    return run;
  } finally {
    await Promise.all(children.map(stopChild));
    for (const q of Object.values(QUEUE_NAMES)) await queues.get(q).obliterate({ force: true }).catch(() => undefined);
    await queues.close();
    await redis.quit();
  }
}

/** The relay latency the bench models (ms): how long the sink takes to answer the end of each message's data. */
const RELAY_MS = Number(process.env.BENCH_SMTP_LATENCY_MS ?? 40);

export const bench: Bench = {
  description: 'one email campaign on a single Redis and on a Redis Cluster, with one and three worker processes, into a sink that answers at once and one that answers like a relay',
  async run(ctx) {
    const n = ctx.scale === 'full' ? 100_000 : 10_000;
    const nRelay = ctx.scale === 'full' ? 30_000 : 4_000;
    const cluster = await ensureRedisCluster();
    await recreateBenchDatabase(URL_);
    const db = createDb(URL_, 10);
    const smtp = await startSmtpPeer({ keep: false });
    const relay = await startSmtpPeer({ keep: false, answerAfterMs: RELAY_MS });
    try {
      await migrateLatest(db);
      ctx.log('building dist (tsc -p tsconfig.build.json)');
      const built = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: join(__dirname, '..'), encoding: 'utf8' });
      if (built.status !== 0) throw new Error(`build failed: ${built.stdout}${built.stderr}`);
      const r = {
        single1: await runOnce(db, smtp, SINGLE, 1, n, 'single1', ctx.log),
        cluster1: await runOnce(db, smtp, cluster, 1, n, 'cluster1', ctx.log),
        single3: await runOnce(db, smtp, SINGLE, 3, n, 'single3', ctx.log),
        cluster3: await runOnce(db, smtp, cluster, 3, n, 'cluster3', ctx.log),
        relay1: await runOnce(db, relay, cluster, 1, nRelay, `relay${RELAY_MS}ms-cluster1`, ctx.log),
        relay3: await runOnce(db, relay, cluster, 3, nRelay, `relay${RELAY_MS}ms-cluster3`, ctx.log),
      };
      const m = (name: string, count: number, v: Run, base?: { name: string; value: number }, target?: { text: string; met: boolean }): Metric => ({ name: `${name} (${count})`, value: v.rate, unit: 'msg/s', baseline: base, target });
      const relayName = (w: number) => `cluster, ${w} worker${w > 1 ? 's' : ''}, relay answering after ${RELAY_MS} ms`;
      const metrics: Metric[] = [
        m('single Redis, 1 worker', n, r.single1),
        m('cluster, 1 worker', n, r.cluster1, { name: 'single Redis, 1 worker', value: r.single1.rate }, { text: '>= 0.9x single', met: r.cluster1.rate >= 0.9 * r.single1.rate }),
        m('single Redis, 3 workers', n, r.single3, { name: 'single Redis, 1 worker', value: r.single1.rate }, { text: '>= 2.5x one worker', met: r.single3.rate >= 2.5 * r.single1.rate }),
        m('cluster, 3 workers', n, r.cluster3, { name: 'cluster, 1 worker', value: r.cluster1.rate }, { text: '>= 2.5x one worker', met: r.cluster3.rate >= 2.5 * r.cluster1.rate }),
        m('cluster, 3 workers vs single', n, r.cluster3, { name: 'single Redis, 3 workers', value: r.single3.rate }, { text: '>= 0.9x single', met: r.cluster3.rate >= 0.9 * r.single3.rate }),
        m(relayName(1), nRelay, r.relay1),
        m(relayName(3), nRelay, r.relay3, { name: relayName(1), value: r.relay1.rate }, { text: '>= 2.5x one worker', met: r.relay3.rate >= 2.5 * r.relay1.rate }),
      ];
      for (const [k, v] of Object.entries(r)) {
        metrics.push({ name: `${k}: CPU of the worker processes (one core = 100)`, value: 100 * v.workersCpu, unit: '%' });
        metrics.push({ name: `${k}: CPU of the bench database's Postgres backends`, value: 100 * v.postgresCpu, unit: '%' });
        metrics.push({ name: `${k}: CPU of the Redis processes`, value: 100 * v.redisCpu, unit: '%' });
        metrics.push({ name: `${k}: CPU of the SMTP sink`, value: 100 * v.sinkCpu, unit: '%' });
        metrics.push({ name: `${k}: machine CPU busy (all ${cpus().length} cores)`, value: 100 * v.machineBusy, unit: '%' });
      }
      return metrics;
    } finally {
      await smtp.close();
      await relay.close();
      await db.destroy();
    }
  },
};
