import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { freePort } from './helpers/ports';
import { join } from 'node:path';
import pg from 'pg';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/env';

/**
 * The real entry point as a child process (src/main.ts through @swc-node/register, as `npm start`
 * runs its build): config errors, first boot on a missing database, readiness, clean SIGTERM.
 */
jest.setTimeout(120_000);

const ROOT = join(__dirname, '..');
const CONFIG_VARS = /^(NODE_ENV|ROLE|PORT|DATABASE_URL|REDIS_URL|QUEUE_PREFIX|HARK_|PUBLIC_URL|SMTP_URL|TWILIO_|DKIM_|LOG_LEVEL|BODY_LIMIT|DB_POOL_MAX|EMAIL_RATE|SMS_RATE|SHUTDOWN_|HEAP_)/;
// The child sees none of the parent's hark variables: only those a test passes.
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !CONFIG_VARS.test(k)));

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], { cwd: ROOT, env: { ...baseEnv, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

describe('configuration at boot', () => {
  test.each([
    ['HARK_ADMIN_TOKEN is missing', {}, /^config: HARK_ADMIN_TOKEN is required$/],
    ['PORT is not a number', { HARK_ADMIN_TOKEN: 'x'.repeat(20), PORT: 'eighty' }, /^config: PORT must be a whole number/],
    ['DATABASE_URL is not a postgres URL', { HARK_ADMIN_TOKEN: 'x'.repeat(20), DATABASE_URL: 'mysql://db/hark' }, /^config: DATABASE_URL must be a URL/],
    ['ROLE is unknown', { HARK_ADMIN_TOKEN: 'x'.repeat(20), ROLE: 'cron' }, /^config: ROLE must be one of all, api, worker$/],
    ['HEAP_GROWING_PERCENT is not a number', { HARK_ADMIN_TOKEN: 'x'.repeat(20), HEAP_GROWING_PERCENT: 'low' }, /^config: HEAP_GROWING_PERCENT must be a whole number/],
  ])('when %s, then the process exits non-zero with one line naming the variable', async (_what, env, line) => {
    const p = run(env as Record<string, string>);
    children.push(p.child);
    const { code } = await p.exited;
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    const lines = p.out.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  });
});

describe('what a worker loads', () => {
  test('when the entry point and the worker role are loaded, then neither the HTTP API nor MJML is among their modules', async () => {
    // main.ts required as a module does not start; startWorkers is what ROLE=worker adds to it.
    const script = `require('./src/main'); require('./workers');
      const loaded = Object.keys(require.cache);
      process.stdout.write(JSON.stringify({ app: loaded.filter((f) => f.endsWith('/src/app.ts')), mjml: loaded.filter((f) => f.includes('/node_modules/mjml')).length, dispatch: loaded.some((f) => f.endsWith('/workers/dispatch-worker.ts')) }));`;
    const child = spawn(process.execPath, ['-r', '@swc-node/register', '-e', script], { cwd: ROOT, env: baseEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.once('exit', r));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const got = JSON.parse(stdout);
    expect(got.dispatch).toBe(true);
    expect(got.app).toEqual([]);
    expect(got.mjml).toBe(0);
  });
});

describe('ROLE=all on a fresh machine', () => {
  const dbName = `${new URL(TEST_DATABASE_URL).pathname.slice(1)}_proc`;
  const dbUrl = new URL(TEST_DATABASE_URL);
  dbUrl.pathname = `/${dbName}`;
  const admin = new URL(TEST_DATABASE_URL);
  admin.pathname = '/postgres';
  const adminQuery = async (sql: string, params: unknown[] = []) => {
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    try {
      return await c.query(sql, params);
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  });
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
  });

  test('when started against a missing database, then it creates and migrates it, is ready, and SIGTERM exits 0 promptly', async () => {
    expect((await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [dbName])).rowCount).toBe(0);
    const port = await freePort();
    const p = run({
      // NODE_ENV=test: JSON lines, as in production (development prints readable lines: tryout-config.test.ts).
      NODE_ENV: 'test', ROLE: 'all', PORT: String(port), DATABASE_URL: dbUrl.toString(), REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: `hark-proc-${randomBytes(4).toString('hex')}`, HARK_ADMIN_TOKEN: 'process-test-token-0123456789', LOG_LEVEL: 'info',
    });
    children.push(p.child);
    let ready: { status: number; body: unknown } | undefined;
    const until = Date.now() + 90_000;
    while (Date.now() < until && p.child.exitCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/readyz`);
        ready = { status: res.status, body: await res.json() };
        if (res.status === 200) break;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready).toEqual({ status: 200, body: { status: 'ok', postgres: 'ok', redis: 'ok' } });
    expect((await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [dbName])).rowCount).toBe(1);
    const c = new pg.Client({ connectionString: dbUrl.toString() });
    await c.connect();
    const { rows } = await c.query("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('workspaces', 'customers', 'purchases', 'events')");
    await c.end();
    expect(rows[0].n).toBe(4);
    // Logs are structured JSON lines.
    expect(JSON.parse(p.out.stdout.split('\n').find((l) => l.includes('hark listening'))!)).toMatchObject({ port, role: 'all' });
    // A server with autovacuum off gets one warning at boot; one with it on, none.
    const autovacuum = (await adminQuery('SHOW autovacuum')).rows[0].autovacuum;
    const warned = p.out.stdout.split('\n').filter((l) => l.includes('autovacuum off'));
    expect(warned.map((l) => JSON.parse(l).level)).toEqual(autovacuum === 'on' ? [] : [40]);

    const sent = Date.now();
    p.child.kill('SIGTERM');
    const { code, signal } = await p.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(p.out.stdout).toContain('"msg":"stopped"');
  });

  test('when started with ROLE=worker, then it serves only the operations endpoints and stops cleanly', async () => {
    const port = await freePort();
    const p = run({
      ROLE: 'worker', PORT: String(port), DATABASE_URL: dbUrl.toString(), REDIS_URL: TEST_REDIS_URL,
      QUEUE_PREFIX: `hark-proc-${randomBytes(4).toString('hex')}`, HARK_ADMIN_TOKEN: 'process-test-token-0123456789', LOG_LEVEL: 'info',
    });
    children.push(p.child);
    let status = 0;
    const until = Date.now() + 90_000;
    while (Date.now() < until && p.child.exitCode === null && status !== 200) {
      status = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0);
      if (status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    expect(status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    const api = await fetch(`http://127.0.0.1:${port}/v1/workspaces`, { method: 'POST', headers: { authorization: 'Bearer process-test-token-0123456789', 'content-type': 'application/json' }, body: '{"name":"x"}' });
    expect(api.status).toBe(404);
    p.child.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
  });
});
