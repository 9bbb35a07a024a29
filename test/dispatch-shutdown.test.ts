import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { newWorkspace } from './helpers/api';
import { TEST_DATABASE_URL } from './helpers/env';
import { startTestServer, TestServer } from './helpers/server';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';

/**
 * A deploy: the real entry point (src/main.ts, ROLE=worker) is sent SIGTERM in the middle of a
 * dispatch job that the rate limit makes far longer than SHUTDOWN_TIMEOUT_MS. It must exit in
 * time, leave no row 'sending', and lose nothing: a second worker sends the rest, each address once.
 */
jest.setTimeout(120_000);

const ROOT = join(__dirname, '..');
const N = 150;
const SHUTDOWN_TIMEOUT_MS = 4000;
const CONFIG_VARS = /^(NODE_ENV|ROLE|PORT|DATABASE_URL|REDIS_URL|QUEUE_PREFIX|HARK_|PUBLIC_URL|SMTP_URL|TWILIO_|DKIM_|LOG_LEVEL|BODY_LIMIT|DB_POOL_MAX|EMAIL_RATE|SMS_RATE|SHUTDOWN_|HEAP_)/;
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CONFIG_VARS.test(k)));
const children: ChildProcess[] = [];
let smtp: SmtpPeer;
let server: TestServer;

beforeAll(async () => {
  smtp = await startSmtpPeer({ keep: false });
  server = await startTestServer();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await server.close();
  await smtp.close();
});

function env(extra: Record<string, string> = {}) {
  return {
    ...baseEnv,
    NODE_ENV: 'test',
    DATABASE_URL: TEST_DATABASE_URL,
    REDIS_URL: server.deps.config.REDIS_URL,
    QUEUE_PREFIX: server.deps.queues.prefix,
    SMTP_URL: smtp.url,
    HARK_ADMIN_TOKEN: server.deps.config.HARK_ADMIN_TOKEN,
    ...extra,
  };
}

/** Spawns a process and resolves once its output contains `ready`. */
function spawnUntil(args: string[], environment: NodeJS.ProcessEnv, ready: string) {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', ...args], { cwd: ROOT, env: environment, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const started = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    void exited.then((code) => reject(new Error(`exited ${code} before ready: ${out.slice(-2000)}`)));
  });
  return { child, started, exited };
}

async function until(what: string, fn: () => Promise<boolean> | boolean, ms = 60_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const received = (domain: string) => {
  const per = new Map<string, number>();
  for (const m of smtp.received) for (const to of m.envelopeTo) if (to.endsWith(`@${domain}`)) per.set(to, (per.get(to) ?? 0) + 1);
  return per;
};

test('when a worker gets SIGTERM mid-job under the rate limit, then it exits 0 within SHUTDOWN_TIMEOUT_MS with no row sending, and a second worker sends the rest: all sent, none twice, none unknown', async () => {
  const domain = 'deploy.example';
  const ws = await newWorkspace(server.url, 'deploy shop', { timezone: 'UTC' });
  await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
  const customers = Array.from({ length: N }, (_, i) => ({ externalId: `d${i}`, email: `d${i}@${domain}`, emailConsent: 'subscribed', city: 'Riga' }));
  expect((await ws.api.post('/v1/customers/batch', { customers })).body.created).toBe(N);
  const seg = (await ws.api.post('/v1/segments', { name: 'riga', definition: { field: 'city', op: 'eq', value: 'Riga' } })).body.id;
  const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Hello</p>' })).body.id;
  const id = (await ws.api.post('/v1/campaigns', { name: 'c', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;

  // 20 a second: the campaign's one job of 150 ids needs 7.5 s, twice the shutdown deadline.
  const first = spawnUntil(['src/main.ts'], env({ ROLE: 'worker', PORT: '0', LOG_LEVEL: 'info', EMAIL_RATE_PER_SECOND: '20', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) }), 'hark listening');
  await first.started;
  expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
  await until('some mail', () => received(domain).size >= 20);
  const signalled = Date.now();
  first.child.kill('SIGTERM');
  const code = await first.exited;
  const took = Date.now() - signalled;
  expect(code).toBe(0);
  expect(took).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
  const byStatus = async () =>
    Object.fromEntries((await server.deps.db('messages').where({ campaign_id: id }).select('status').count('* as n').groupBy('status')).map((r) => [r.status, Number(r.n)]));
  const left = await byStatus();
  expect(left.sending ?? 0).toBe(0);
  expect(left.unknown ?? 0).toBe(0);
  expect(left.queued ?? 0).toBeGreaterThan(0);

  const second = spawnUntil(['test/helpers/dispatch-child.ts'], env({ LOG_LEVEL: 'silent', EMAIL_RATE_PER_SECOND: '200' }), 'ready');
  await second.started;
  await until('campaign sent', async () => (await ws.api.get(`/v1/campaigns/${id}`)).body.status === 'sent');
  const { counts } = (await ws.api.get(`/v1/campaigns/${id}`)).body;
  expect(counts).toMatchObject({ sent: N, unknown: 0, failed: 0 });
  const per = received(domain);
  expect(per.size).toBe(N);
  expect(Math.max(...per.values())).toBe(1);
});
