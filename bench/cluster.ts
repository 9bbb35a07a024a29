import { ChildProcess, spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join } from 'node:path';
import { recreateBenchDatabase } from './harness';
import type { Bench, Metric } from './harness';
import { pidsWhere, procCpuMs } from './proc';
import { describeRun, measureRun, RunCpu } from './cluster-probe';
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
import { CLUSTER_PORTS, ensureRedisCluster } from '../test/helpers/redis-cluster';

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


interface Run extends RunCpu {
  rate: number;
  /** The sink's event loop delay over the run, p99 (ms): how late it could answer at worst, nearly. */
  sinkDelayP99: number;
}

/** Postgres backends serving the bench database (`postgres: <cluster>: <user> <db> <client> <state>`). */
const DB_NAME = new URL(URL_).pathname.slice(1);
const backends = () => pidsWhere((c) => c.startsWith('postgres: ') && c.split(' ').includes(DB_NAME));
/** The redis-server processes of this Redis or cluster URL (shared with whatever else uses them). */
const redisPorts = (url: string): number[] => {
  // A cluster URL names seed nodes; the local cluster's nodes are CLUSTER_PORTS (test/helpers/redis-cluster.ts).
  if (url.includes('+cluster')) return url.includes(':7101') ? CLUSTER_PORTS : [...url.matchAll(/:(\d+)/g)].map((m) => Number(m[1]));
  return [Number(new URL(url).port || 6379)];
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
  const ports = redisPorts(redisUrl);
  try {
    for (let i = 0; i < workers; i++) children.push(await spawnWorker(env));
    const pids = children.map((c) => c.pid!);
    await db.raw('CHECKPOINT');
    // Idle for a few seconds first: what the worker processes and Redis spend with no job at all
    // (BullMQ's blocking waits and stalled checks, the ticks' locks, the client's slot refreshes).
    const idle = await measureRun(pids, backends, ports);
    const idleS = 3;
    await new Promise((res) => setTimeout(res, idleS * 1000));
    const i = await idle.stop(idleS, idleS);
    log(`${tag}: idle ${idleS} s: workers ${pct(i.workers)}, Postgres ${pct(i.postgres)}, Redis ${pct(i.redis)} of one core; Redis commands per second on the masters ${i.redisCalls.toFixed(0)} (${i.topCommands.replace(/ (\d+)\.\d+/g, ' $1')})`);

    const before = smtp.count();
    const measure = await measureRun(pids, backends, ports);
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const t0 = process.hrtime.bigint();
    await sendNow(deps, workspaceId, campaignId);
    // Timeline: when each worker process first got busy (over 30% of a core in a 250 ms window),
    // and when the sink had 10% and 90% of the messages (the rate between them is the steady one).
    const busyFrom: Array<number | null> = children.map(() => null);
    let lastCpu = pids.map((p) => procCpuMs(p));
    let lastAt = 0;
    const marks: Record<string, number> = {};
    while (smtp.count() - before < n) {
      if (secs(t0) > 1800) throw new Error(`${tag}: only ${smtp.count() - before} of ${n} after 30 min`);
      await new Promise((r) => setTimeout(r, 50));
      const at = secs(t0);
      for (const f of [0.1, 0.9]) if (smtp.count() - before >= f * n) marks[f] ??= at;
      if (at - lastAt >= 0.25) {
        const now = pids.map((p) => procCpuMs(p));
        now.forEach((v, k) => void (busyFrom[k] ??= (v - lastCpu[k]!) / 1000 / (at - lastAt) > 0.3 ? lastAt : null));
        [lastCpu, lastAt] = [now, at];
      }
    }
    const wall = secs(t0);
    loop.disable();
    const run: Run = { rate: n / wall, sinkDelayP99: loop.percentile(99) / 1e6, ...(await measure.stop(wall, n)) };
    log(`${tag}: ${run.rate.toFixed(0)} msg/s in ${wall.toFixed(1)} s (10-90% of the messages: ${((0.8 * n) / (marks[0.9]! - marks[0.1]!)).toFixed(0)} msg/s); workers busy from ${busyFrom.map((b) => (b === null ? 'never' : `${b.toFixed(1)} s`)).join(', ')}; sink event loop delay p99 ${run.sinkDelayP99.toFixed(1)} ms`);
    log(`${tag}: ${describeRun(run, run.rate)}`);
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
      // Each instant-sink configuration runs twice, in the order A B C D D C B A: the machine is
      // shared, and a load that rises or falls through the bench then weighs on both members of a
      // comparison alike (the figures are the means of the two runs).
      // BENCH_CLUSTER_RUNS=single3,cluster3 runs only those, in that order (a diagnosis).
      const plan: Record<string, () => Promise<Run>> = {
        single1: () => runOnce(db, smtp, SINGLE, 1, n, 'single1', ctx.log),
        cluster1: () => runOnce(db, smtp, cluster, 1, n, 'cluster1', ctx.log),
        single3: () => runOnce(db, smtp, SINGLE, 3, n, 'single3', ctx.log),
        cluster3: () => runOnce(db, smtp, cluster, 3, n, 'cluster3', ctx.log),
        relay1: () => runOnce(db, relay, cluster, 1, nRelay, `relay${RELAY_MS}ms-cluster1`, ctx.log),
        relay3: () => runOnce(db, relay, cluster, 3, nRelay, `relay${RELAY_MS}ms-cluster3`, ctx.log),
      };
      const order = process.env.BENCH_CLUSTER_RUNS?.split(',') ?? ['single1', 'cluster1', 'single3', 'cluster3', 'cluster3', 'single3', 'cluster1', 'single1', 'relay1', 'relay3'];
      const runs = new Map<string, Run[]>();
      for (const k of order) runs.set(k, [...(runs.get(k) ?? []), await plan[k]!()]);
      const metrics: Metric[] = [];
      const mean = (k: string) => {
        const rs = runs.get(k) ?? [];
        const avg = (f: (r: Run) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
        const cpuMs = avg((r) => (1000 * (r.workers + r.postgres + r.redis + r.sink)) / r.rate);
        return rs.length ? { rate: avg((r) => r.rate), rates: rs.map((r) => r.rate.toFixed(0)).join(', '), cpuMs, redisMs: avg((r) => (1000 * r.redis) / r.rate), replicasMs: avg((r) => (1000 * r.redisReplicas) / r.rate) } : null;
      };
      const label: Record<string, string> = {
        single1: `single Redis, 1 worker (${n})`,
        cluster1: `cluster, 1 worker (${n})`,
        single3: `single Redis, 3 workers (${n})`,
        cluster3: `cluster, 3 workers (${n})`,
        relay1: `cluster, 1 worker, relay answering after ${RELAY_MS} ms (${nRelay})`,
        relay3: `cluster, 3 workers, relay answering after ${RELAY_MS} ms (${nRelay})`,
      };
      const compare = (k: string, base: string, min: number, what: string) => {
        const [v, b] = [mean(k), mean(base)];
        if (!v || !b) return;
        metrics.push({ name: `${label[k]}: mean of runs ${v.rates}`, value: v.rate, unit: 'msg/s', baseline: { name: `${label[base]}, mean of ${b.rates}`, value: b.rate }, target: { text: `>= ${min}x ${what}`, met: v.rate >= min * b.rate } });
      };
      for (const k of Object.keys(label)) {
        const v = mean(k);
        if (v) metrics.push({ name: `${label[k]}: mean of runs ${v.rates}`, value: v.rate, unit: 'msg/s' });
      }
      compare('cluster1', 'single1', 0.9, 'single Redis');
      compare('cluster3', 'single3', 0.9, 'single Redis');
      compare('single3', 'single1', 2.5, 'one worker');
      compare('cluster3', 'cluster1', 2.5, 'one worker');
      compare('relay3', 'relay1', 2.5, 'one worker');
      // The cost as CPU rather than rate: what a message costs all the bench's parts together,
      // whatever share of the shared machine they got (the rates above depend on that share).
      for (const [k, base] of [['cluster1', 'single1'], ['cluster3', 'single3']] as const) {
        const [v, b] = [mean(k), mean(base)];
        if (!v || !b) continue;
        metrics.push({ name: `${label[k]}: CPU per message, all parts`, value: v.cpuMs, unit: 'ms', baseline: { name: label[base]!, value: b.cpuMs } });
        metrics.push({ name: `${label[k]}: of it Redis (6 nodes), single Redis ${b.redisMs.toFixed(3)}`, value: v.redisMs, unit: 'ms' });
        metrics.push({ name: `${label[k]}: of it the 3 replicas (same host here, other hosts in production)`, value: v.replicasMs, unit: 'ms' });
      }
      for (const [k, rs] of runs) {
        rs.forEach((v, i) => {
          const tag = `${k}${rs.length > 1 ? ` #${i + 1}` : ''}`;
          metrics.push({ name: `${tag}: CPU per message, workers + Postgres + Redis + sink`, value: (1000 * (v.workers + v.postgres + v.redis + v.sink)) / v.rate, unit: 'ms' });
          metrics.push({ name: `${tag}: machine busy (all cores)`, value: 100 * v.machineBusy, unit: '%' });
          metrics.push({ name: `${tag}: CPU of processes outside the run (one core = 100)`, value: 100 * v.others, unit: '%' });
          metrics.push({ name: `${tag}: CPU of the SMTP sink (its one thread = 100; event loop delay p99 ${v.sinkDelayP99.toFixed(1)} ms)`, value: 100 * v.sink, unit: '%' });
        });
      }
      return metrics;
    } finally {
      await smtp.close();
      await relay.close();
      await db.destroy();
    }
  },
};
