import { ChildProcess, spawn } from 'node:child_process';
import { freePort } from '../test/helpers/ports';
import { join } from 'node:path';
import type { Knex } from 'knex';
import type { Bench, Metric } from './harness';
import { recreateBenchDatabase } from './harness';
import { sendNow } from '../src/campaigns/service';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb, Db, migrateLatest } from '../src/db';
import { consumeFeed } from '../src/feed';
import { createLogger } from '../src/logger';
import { atRiskPerJob } from '../src/messages/dispatch';
import { createMetrics } from '../src/ops/metrics';
import { QUEUE_NAMES, Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { createWorkspace, updateSettings } from '../src/workspaces/repo';
import { CRASH_TEST_PARALLEL } from '../test/helpers/dispatch-child';
import { startSmtpPeer } from '../test/helpers/smtp-peer';

/**
 * Issue 15's fault test: a 2,000-message email campaign sent by two worker processes
 * (test/helpers/dispatch-child.ts: dispatch + campaign workers, 2 jobs x 4 lanes each) into a real
 * SMTP server, with each fault injected once at a random point of the send: SMTP connections cut
 * after DATA (3 random recipients), a restart of the Redis the queues live in (its own
 * redis-server on a spare loopback port, never the shared one), a worker SIGKILLed, a worker
 * SIGTERMed mid-job (each replaced at once), and a slow transaction that commits a feed row 8 s
 * after later rows were consumed. Reports addresses received twice, messages lost (never received
 * and not reported unknown), unknown ones, and feed rows skipped or seen twice.
 * Small scale: 500 messages. Own database hark_bench_faults.
 */
const URL_ = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_faults';
const ROOT = join(__dirname, '..');
const JOBS_PER_WORKER = 2; // dispatch worker concurrency, as dispatch-child.ts runs it
const DROPS = 3;
const SLOW_TX_MS = 8000;

/** A throwaway redis-server of this bench, on loopback, no persistence: a restart loses every job. */
function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'ignore'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('Ready to accept connections') && resolve(child));
    child.once('exit', (code) => reject(new Error(`redis-server exited ${code}`)));
  });
}

const exited = (c: ChildProcess) => new Promise<number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.exitCode) : c.once('exit', (code) => r(code))));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function seed(db: Db, n: number) {
  const ws = await createWorkspace(db, { name: 'bench faults' });
  await updateSettings(db, ws.id, { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
  await db.raw(
    `INSERT INTO customers (workspace_id, external_id, email, city, email_consent)
     SELECT ?, 'c' || g, 'c' || g || '@faults.example', 'Riga', 'subscribed' FROM generate_series(1, ?) g`,
    [ws.id, n],
  );
  const [seg] = await db('segments').insert({ workspace_id: ws.id, name: 'riga', kind: 'dynamic', definition: JSON.stringify({ field: 'city', op: 'eq', value: 'Riga' }) }).returning('id');
  const [tpl] = await db('templates').insert({ workspace_id: ws.id, name: 't', channel: 'email', subject: 'Hello', body: '<p>Spring sale</p>', format: 'html' }).returning('id');
  const [c] = await db('campaigns').insert({ workspace_id: ws.id, name: 'faults', channel: 'email', template_id: tpl.id, segment_ids: [seg.id], status: 'draft' }).returning('id');
  return { workspaceId: ws.id as string, campaignId: String(c.id) };
}

export const bench: Bench = {
  description: 'faults injected at random points of a campaign send: nothing received twice, nothing lost',
  async run(ctx) {
    const n = ctx.scale === 'full' ? 2000 : 500;
    const rate = ctx.scale === 'full' ? 100 : 50;
    await recreateBenchDatabase(URL_);
    const redisPort = await freePort();
    let redis = await startRedis(redisPort);
    const dropped = new Set<string>();
    while (dropped.size < DROPS) dropped.add(`c${1 + Math.floor(Math.random() * n)}@faults.example`);
    const smtp = await startSmtpPeer({ keep: false, dropAfterData: (to) => dropped.has(to) });
    const config = loadConfig({ DATABASE_URL: URL_, REDIS_URL: `redis://127.0.0.1:${redisPort}`, SMTP_URL: smtp.url, HARK_ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef', LOG_LEVEL: 'silent' });
    const db = createDb(URL_, 6);
    const client = createRedis(config.REDIS_URL);
    client.on('error', () => undefined);
    const queues = new Queues(client, `hark-bench-faults-${Date.now()}`);
    // The restart is expected: its connection errors are not the bench's to print.
    for (const name of Object.values(QUEUE_NAMES)) queues.get(name).on('error', () => undefined);
    const deps = { config, db, redis: client, queues, clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
    const workers = new Set<ChildProcess>();
    const env = { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: URL_, REDIS_URL: config.REDIS_URL, QUEUE_PREFIX: queues.prefix, SMTP_URL: smtp.url, EMAIL_RATE_PER_SECOND: String(rate), HARK_ADMIN_TOKEN: config.HARK_ADMIN_TOKEN };
    const startWorker = () =>
      new Promise<ChildProcess>((resolve, reject) => {
        const child = spawn(process.execPath, ['-r', '@swc-node/register', 'test/helpers/dispatch-child.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve(child));
        child.once('exit', (code) => {
          workers.delete(child);
          reject(new Error(`worker exited ${code}: ${err.slice(-500)}`));
        });
        workers.add(child);
      });

    // Every feed row the bench's own consumer sees, by id: none may be skipped or seen twice.
    const feedSeen = new Map<string, number>();
    let consuming = true;
    const consumer = (async () => {
      while (consuming) {
        await consumeFeed(db, 'bench:faults', 'message_events', async (_trx, rows) => {
          for (const r of rows) feedSeen.set(String(r.id), (feedSeen.get(String(r.id)) ?? 0) + 1);
        }, { now: new Date() }).catch(() => undefined);
        await sleep(200);
      }
    })();

    const metrics: Metric[] = [];
    const log: string[] = [];
    let slowTx: Promise<void> = Promise.resolve();
    let sigtermExit: { code: number | null; ms: number } | undefined;
    try {
      await migrateLatest(db);
      const { workspaceId, campaignId } = await seed(db, n);
      await Promise.all([startWorker(), startWorker()]);
      const received = () => smtp.received.length;

      const faults: Record<string, () => Promise<void>> = {
        'worker SIGKILL': async () => {
          const w = [...workers][0]!;
          w.kill('SIGKILL');
          await exited(w);
          await startWorker();
        },
        'worker SIGTERM mid-job': async () => {
          const w = [...workers][0]!;
          const t0 = Date.now();
          w.kill('SIGTERM');
          const code = await exited(w);
          sigtermExit = { code, ms: Date.now() - t0 };
          await startWorker();
        },
        'Redis restart': async () => {
          redis.kill('SIGTERM');
          await exited(redis);
          await sleep(1000);
          redis = await startRedis(redisPort);
        },
        'slow committing transaction': async () => {
          // A feed row whose transaction commits long after later rows were consumed.
          const trx: Knex.Transaction = await db.transaction();
          const m = await trx('messages').where({ campaign_id: campaignId }).first('id');
          await trx('message_events').insert({ workspace_id: workspaceId, message_id: m.id, type: 'opened', occurred_at: new Date(), data: '{}' });
          slowTx = sleep(SLOW_TX_MS).then(() => trx.commit()).then(() => undefined);
        },
      };
      // Each fault once, in random order, at a random share (10%..80%) of the messages received.
      const plan = Object.keys(faults)
        .map((name) => ({ name, at: Math.floor(n * (0.1 + Math.random() * 0.7)) }))
        .sort((a, b) => a.at - b.at);
      ctx.log(`plan: ${plan.map((p) => `${p.name} at ${p.at}`).join(', ')}; SMTP cut after DATA for ${DROPS} random recipients`);

      const t0 = Date.now();
      await sendNow(deps, workspaceId, campaignId);
      const deadline = t0 + 300_000;
      for (const step of plan) {
        while (received() < step.at && Date.now() < deadline) await sleep(50);
        log.push(`${step.name} at ${received()} received, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        ctx.log(log[log.length - 1]!);
        await faults[step.name]!();
      }
      while (Date.now() < deadline) {
        const c = await db('campaigns').where({ id: campaignId }).first('status');
        if (c.status === 'sent') break;
        await sleep(250);
      }
      const seconds = (Date.now() - t0) / 1000;
      await slowTx;
      await sleep(1500); // the consumer's last turns after the slow row's commit
      consuming = false;
      await consumer;

      const rows = await db('messages').where({ campaign_id: campaignId }).select('id', 'address', 'status');
      const per = new Map<string, number>();
      for (const m of smtp.received) for (const to of m.envelopeTo) per.set(to, (per.get(to) ?? 0) + 1);
      const twice = [...per.values()].filter((v) => v > 1).length;
      const unknown = rows.filter((r) => r.status === 'unknown');
      const lost = rows.filter((r) => !per.has(r.address) && r.status !== 'unknown');
      const unknownNeverReceived = unknown.filter((r) => !per.has(r.address)).length;
      const cutUnknown = unknown.filter((r) => dropped.has(r.address)).length;
      const pending = rows.filter((r) => r.status === 'queued' || r.status === 'sending').length;
      const feedIds = (await db('message_events').pluck('id')).map(String);
      const skipped = feedIds.filter((id) => !feedSeen.has(id)).length;
      const feedTwice = [...feedSeen.values()].filter((v) => v > 1).length;
      // Provider calls in flight at once per worker process; the rows one can hold 'sending' are atRiskPerJob per job.
      const concurrency = JOBS_PER_WORKER * CRASH_TEST_PARALLEL;
      const atRisk = JOBS_PER_WORKER * atRiskPerJob(CRASH_TEST_PARALLEL);
      ctx.log(`statuses: ${JSON.stringify(Object.fromEntries([...new Set(rows.map((r) => r.status))].map((s) => [s, rows.filter((r) => r.status === s).length])))}`);
      metrics.push(
        { name: 'messages in the campaign', value: rows.length, unit: 'msgs', target: { text: `= ${n}`, met: rows.length === n } },
        { name: 'addresses received twice', value: twice, unit: 'addresses', target: { text: '= 0', met: twice === 0 } },
        { name: 'lost (never received, not unknown)', value: lost.length, unit: 'msgs', target: { text: '= 0', met: lost.length === 0 } },
        { name: 'still queued or sending at the end', value: pending, unit: 'msgs', target: { text: '= 0', met: pending === 0 } },
        { name: 'unknown', value: unknown.length, unit: 'msgs' },
        // Each SMTP cut after DATA is an ambiguous answer by design (one unknown each); the rest come from the SIGKILL.
        { name: 'unknown beyond the SMTP cuts', value: unknown.length - cutUnknown, unit: 'msgs', target: { text: `<= ${concurrency} (a worker's ${JOBS_PER_WORKER} jobs x ${CRASH_TEST_PARALLEL} lanes)`, met: unknown.length - cutUnknown <= concurrency } },
        { name: 'unknown, never received', value: unknownNeverReceived, unit: 'msgs' },
        { name: 'unknown from the SMTP cuts after DATA', value: cutUnknown, unit: 'msgs', target: { text: `= ${DROPS}`, met: cutUnknown === DROPS } },
        { name: 'rows one SIGKILLed worker can leave sending (bound)', value: atRisk, unit: 'msgs' },
        { name: 'SIGTERMed worker: exit code', value: sigtermExit?.code ?? -1, unit: '', target: { text: '= 0', met: sigtermExit?.code === 0 } },
        { name: 'SIGTERMed worker: time to exit', value: sigtermExit?.ms ?? -1, unit: 'ms', target: { text: `< ${config.SHUTDOWN_TIMEOUT_MS}`, met: (sigtermExit?.ms ?? Infinity) < config.SHUTDOWN_TIMEOUT_MS } },
        { name: 'feed rows skipped (slow transaction included)', value: skipped, unit: 'rows', target: { text: '= 0', met: skipped === 0 } },
        { name: 'feed rows consumed twice', value: feedTwice, unit: 'rows', target: { text: '= 0', met: feedTwice === 0 } },
        { name: 'send time with the faults', value: seconds, unit: 's' },
      );
    } finally {
      consuming = false;
      await consumer.catch(() => undefined);
      await slowTx.catch(() => undefined);
      for (const w of workers) w.kill('SIGKILL');
      await queues.close().catch(() => undefined);
      client.disconnect();
      redis.kill('SIGTERM');
      await db.destroy();
      await smtp.close();
    }
    return metrics;
  },
};
