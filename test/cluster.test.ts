import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { ConfigError, loadConfig } from '../src/config';
import { atRiskPerJob } from '../src/messages/dispatch';
import { QUEUE_NAMES } from '../src/queues';
import { checkRedisTopology } from '../src/redis';
import { startAutomationWorker } from '../workers/automation-worker';
import { startResultsWorker } from '../workers/results-worker';
import { CRASH_TEST_PARALLEL } from './helpers/dispatch-child';
import { TEST_DATABASE_URL } from './helpers/env';
import { CLUSTER_URL, cli, clusterHealthy, ensureRedisCluster, ownersOf } from './helpers/redis-cluster';
import { startTestServer, TestServer } from './helpers/server';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { receivedBy, sendCampaign, until, WorkerProcs } from './helpers/worker-procs';

/**
 * hark on a real Redis Cluster (3 masters, 3 replicas on 7101-7106, started by global-setup):
 * worker processes SIGKILLed and replaced, the rate ceiling across processes, automations and
 * attribution on the cluster, and a failover mid-send. The promise is the single Redis's: each
 * address at most once, sent + unknown = eligible.
 */
jest.setTimeout(150_000);

const ROOT = join(__dirname, '..');
/** Below what two worker processes reach on a loaded 2-core machine (60-100/s), so that the ceiling, not the machine, paces the sends. */
const RATE = 50;
let smtp: SmtpPeer;
let server: TestServer;
const procs = new WorkerProcs();

beforeAll(async () => {
  await ensureRedisCluster();
  smtp = await startSmtpPeer({ keep: true });
  server = await startTestServer({ env: { REDIS_URL: CLUSTER_URL } });
});

afterAll(async () => {
  procs.killAll();
  await server?.close();
  await smtp?.close();
});

const worker = () => procs.start(server, { SMTP_URL: smtp.url, EMAIL_RATE_PER_SECOND: String(RATE) });

const received = (domain: string) => receivedBy(smtp, domain);
const campaign = (domain: string, n: number) => sendCampaign(server, domain, n);

async function expectAtMostOnce(ws: { api: any }, id: string, domain: string, n: number) {
  await until('campaign sent', async () => (await ws.api.get(`/v1/campaigns/${id}`)).body.status === 'sent', 120_000);
  const { counts } = (await ws.api.get(`/v1/campaigns/${id}`)).body;
  const per = received(domain);
  expect(Math.max(...per.values())).toBe(1);
  expect(counts.sent + counts.unknown).toBe(n);
  expect(counts.failed).toBe(0);
  expect(per.size).toBeGreaterThanOrEqual(counts.sent);
  return counts;
}

describe('REDIS_URL naming a Redis Cluster: bad input', () => {
  const LONE = 7110;
  const loneDir = join(tmpdir(), 'hark-redis-cluster', `lone-${process.pid}`);

  beforeAll(() => {
    // A cluster-enabled node that was never given slots: a cluster missing all 16384.
    cli(LONE, 'shutdown', 'nosave');
    rmSync(loneDir, { recursive: true, force: true });
    mkdirSync(loneDir, { recursive: true });
    execFileSync('redis-server', ['--port', String(LONE), '--bind', '127.0.0.1', '--dir', loneDir, '--daemonize', 'yes', '--cluster-enabled', 'yes', '--save', '', '--appendonly', 'no']);
  });
  afterAll(() => {
    cli(LONE, 'shutdown', 'nosave');
    rmSync(loneDir, { recursive: true, force: true });
  });

  test('when the cluster URL is malformed, then the config names REDIS_URL', () => {
    const load = (REDIS_URL: string) => () => loadConfig({ HARK_ADMIN_TOKEN: 'x'.repeat(20), REDIS_URL });
    expect(load('redis+cluster://127.0.0.1:7101,127.0.0.1:notaport')).toThrow(ConfigError);
    expect(load('redis+cluster://')).toThrow(/REDIS_URL must be a URL/);
    expect(load(CLUSTER_URL)().REDIS_URL).toBe(CLUSTER_URL);
  });

  test('when a node does not answer, is a standalone Redis, or the cluster misses slots, then the boot check says which, in one line', async () => {
    await expect(checkRedisTopology('redis+cluster://127.0.0.1:7101,127.0.0.1:7119')).rejects.toThrow(/^redis: 127\.0\.0\.1:7119 \(REDIS_URL\) does not answer/);
    await expect(checkRedisTopology('redis+cluster://127.0.0.1:6379')).rejects.toThrow('redis: 127.0.0.1:6379 is a standalone Redis, not a Redis Cluster node');
    await expect(checkRedisTopology(`redis+cluster://127.0.0.1:${LONE}`)).rejects.toThrow(`redis: 127.0.0.1:${LONE}: redis cluster is fail: 0 of 16384 slots served`);
    await expect(checkRedisTopology('redis://127.0.0.1:7101')).rejects.toThrow('redis: 127.0.0.1:7101 is a Redis Cluster node; name the cluster as REDIS_URL=redis+cluster://');
    await expect(checkRedisTopology(CLUSTER_URL)).resolves.toBeUndefined();
  });

  test('when hark boots against a standalone Redis named as a cluster, then it exits 1 with one line', () => {
    const r = spawnSync(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, NODE_ENV: 'test', PORT: '0', LOG_LEVEL: 'silent', DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: 'redis+cluster://127.0.0.1:6379', HARK_ADMIN_TOKEN: 'cluster-test-token-0123456789' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual(['hark failed to start: redis: 127.0.0.1:6379 is a standalone Redis, not a Redis Cluster node (REDIS_URL is a redis+cluster:// URL)']);
  });

  test('when the cluster serves no slots while hark runs, then /readyz answers 503 with the reason', async () => {
    const lone = await startTestServer({ env: { REDIS_URL: `redis+cluster://127.0.0.1:${LONE}` } });
    lone.deps.redis.on('error', () => undefined);
    try {
      const res = await fetch(`${lone.url}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'unavailable', postgres: 'ok', redis: 'down', reason: `redis: 127.0.0.1:${LONE}: redis cluster is fail: 0 of 16384 slots served` });
      expect(await (await fetch(`${lone.url}/metrics`)).text()).toMatch(/^hark_redis_cluster_up 0$/m);
    } finally {
      lone.deps.redis.disconnect();
      await lone.close().catch(() => undefined);
    }
  });
});

describe('hark on a Redis Cluster', () => {
  test('when the cluster is healthy, then /readyz and /metrics report its state and the queues spread over its masters', async () => {
    const res = await fetch(`${server.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', postgres: 'ok', redis: 'ok', redisCluster: { state: 'ok', slotsOk: 16384, mastersUp: 3, replicasUp: 3, nodesDown: 0 } });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^hark_redis_cluster_up 1$/m);
    expect(metrics).toMatch(/^hark_redis_cluster_slots_ok 16384$/m);
    expect(metrics).toMatch(/^hark_redis_cluster_nodes\{role="master",state="up"\} 3$/m);
    const masters = new Set(Object.values(QUEUE_NAMES).map((q) => ownersOf(q).master));
    expect(masters.size).toBeGreaterThanOrEqual(2);
  });

  test('when one of two worker processes is SIGKILLed mid-campaign and replaced, then 2,000 addresses receive at most once, sent + unknown = eligible, and the rate ceiling holds across them', async () => {
    const N = 2000;
    const domain = 'kill.cluster.example';
    const { ws, id } = await campaign(domain, N);
    const [first] = await Promise.all([worker(), worker()]);
    await until('some mail', () => received(domain).size >= 400);
    first!.kill('SIGKILL');
    const before = received(domain).size;
    expect(before).toBeLessThan(N);
    await worker();
    const counts = await expectAtMostOnce(ws, id, domain, N);
    // The killed process held at most its running jobs' lanes in 'sending' (2 jobs at once).
    expect(counts.unknown).toBeLessThanOrEqual(2 * atRiskPerJob(CRASH_TEST_PARALLEL));
    // The ceiling holds across the processes, at the SMTP server: every whole second the server
    // saw (the first and last are partial) within EMAIL_RATE_PER_SECOND + 5%. The limiter spaces
    // its grants 1/rate apart across the processes (src/messages/rate.ts), and a lane sends at its
    // grant's instant, so a second at the server gets no burst of grants that arrived late. A
    // limiter per process would let two workers send at twice it.
    const perSecond = new Map<number, number>();
    for (const m of smtp.received) if (m.envelopeTo[0]!.endsWith(`@${domain}`)) perSecond.set(Math.floor(m.at / 1000), (perSecond.get(Math.floor(m.at / 1000)) ?? 0) + 1);
    const seconds = [...perSecond.keys()].sort((a, b) => a - b);
    const series = Array.from({ length: seconds.at(-1)! - seconds[0]! + 1 }, (_, i) => perSecond.get(seconds[0]! + i) ?? 0);
    const inner = series.slice(1, -1);
    if (process.env.CLUSTER_TEST_SERIES) process.stderr.write(`sends a second at the SMTP server: ${series.join(' ')}\n`);
    // Seconds (by their index in the series) over the ceiling: none.
    expect(inner.flatMap((n, i) => (n > RATE * 1.05 ? [{ second: i + 1, sends: n }] : []))).toEqual([]);
    expect(inner.reduce((a, b) => a + b, 0) / inner.length).toBeLessThanOrEqual(RATE * 1.05);
    // It was the ceiling that paced the send, not a slow worker: several full seconds near it.
    expect([...perSecond.values()].filter((n) => n >= RATE * 0.8).length).toBeGreaterThanOrEqual(3);

    // A purchase-triggered automation and attribution, on the cluster's queues: the automation
    // worker takes the purchase from the feed and queues its send to the dispatch processes; the
    // results worker attributes the purchase to the campaign message the buyer clicked.
    const workers = [await startAutomationWorker(server.deps, { tickEveryMs: 300 }), await startResultsWorker(server.deps, { everyMs: 300 })];
    try {
      const tpl = (await ws.api.post('/v1/templates', { name: 'thanks', channel: 'email', subject: 'Thanks', body: '<p>Thank you</p>' })).body.id;
      const auto = await ws.api.post('/v1/automations', { name: 'thanks', trigger: { type: 'purchase' }, steps: [{ type: 'send', channel: 'email', templateId: tpl }], reentryAfterDays: null, enabled: true });
      expect(auto.status).toBe(201);
      const buyer = [...received(domain).keys()][7]!;
      const raw = smtp.received.find((m) => m.envelopeTo.includes(buyer))!.raw!;
      const html = (await simpleParser(raw)).html as string;
      const tracked = /<a href="([^"]+\/c\/[^"]+)">Shop<\/a>/.exec(html)![1]!.replace(/&amp;/g, '&');
      const click = await fetch(server.url + new URL(tracked).pathname + new URL(tracked).search, { redirect: 'manual' });
      expect(click.status).toBe(302);
      const externalId = buyer.split('@')[0]!;
      expect((await ws.api.post('/v1/purchases', { orderId: 'cluster-o-1', customer: { externalId }, occurredAt: new Date().toISOString(), total: 42 })).status).toBeLessThan(300);
      await until('thank-you email', () => smtp.received.some((m) => m.envelopeTo.includes(buyer) && m.raw!.toString().includes('Subject: Thanks')), 30_000);
      await until('conversion', async () => (await server.deps.db('messages').where({ campaign_id: id }).whereNotNull('converted_at').count<{ n: string }[]>('* as n'))[0]!.n === '1', 30_000);
      const converted = await server.deps.db('messages').where({ campaign_id: id }).whereNotNull('converted_at').first('customer_id');
      expect(converted.customer_id).toBe((await server.deps.db('customers').where({ workspace_id: ws.id, external_id: externalId }).first('id')).id);
      expect(smtp.received.filter((m) => m.envelopeTo.includes(buyer))).toHaveLength(2);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  test('when the master holding the dispatch queue fails over to its replica mid-send, then the campaign completes and nothing is sent twice', async () => {
    const N = 600;
    const domain = 'failover.cluster.example';
    const { ws, id } = await campaign(domain, N);
    if (procs.children.filter((c) => c.exitCode === null && c.signalCode === null).length < 2) await worker();
    await until('some mail', () => received(domain).size >= 100);
    await until('a live replica', () => {
      try {
        return Boolean(ownersOf(QUEUE_NAMES.dispatch));
      } catch {
        return false;
      }
    }, 20_000);
    const { master, replica } = ownersOf(QUEUE_NAMES.dispatch);
    expect(cli(replica, 'cluster', 'failover')?.trim()).toBe('OK');
    // Right after the promotion the old master may not yet show as the new one's live replica, and
    // ownersOf throws until it does: the wait reads that as "not yet".
    const promoted = () => {
      try {
        return ownersOf(QUEUE_NAMES.dispatch).master === replica;
      } catch {
        return false;
      }
    };
    await until('replica promoted', promoted, 20_000);
    expect(received(domain).size).toBeLessThan(N);
    const counts = await expectAtMostOnce(ws, id, domain, N);
    expect(counts.sent).toBe(N);
    await until('cluster healthy again', clusterHealthy, 30_000);
    expect(ownersOf(QUEUE_NAMES.dispatch)).toEqual({ master: replica, replica: master });
  });
});
