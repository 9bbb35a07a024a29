import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { loadConfig } from '../src/config';
import { startTestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import pg from 'pg';
import { TEST_DATABASE_URL } from './helpers/env';

/** The provider defaults: the inbox outside production, nothing assumed in production (issue 16, issue 15 item 1). */
// The signing secret production also requires is given, so each case names the variable it is about.
const TOKEN = { HARK_ADMIN_TOKEN: 'x'.repeat(20), HARK_SIGNING_SECRET: 'y'.repeat(40) };

describe('provider configuration', () => {
  test('when nothing is set outside production, then email and SMS go to the built-in inbox and there is no Twilio token', () => {
    for (const NODE_ENV of [undefined, 'development', 'test']) {
      const c = loadConfig({ ...TOKEN, ...(NODE_ENV ? { NODE_ENV } : {}) });
      expect([c.SMTP_URL, c.TWILIO_API_URL, c.SMS_MODE, c.TWILIO_AUTH_TOKEN, c.TWILIO_ACCOUNT_SID]).toEqual(['inbox:', 'inbox:', 'inbox', undefined, undefined]);
    }
  });

  test('when a Twilio account is configured outside production, then SMS go to Twilio unless TWILIO_API_URL says inbox:', () => {
    const account = { TWILIO_ACCOUNT_SID: 'AC123', TWILIO_AUTH_TOKEN: 'secret-token' };
    expect(loadConfig({ ...TOKEN, ...account })).toMatchObject({ TWILIO_API_URL: 'https://api.twilio.com', SMS_MODE: 'twilio' });
    expect(loadConfig({ ...TOKEN, ...account, TWILIO_API_URL: 'inbox:' })).toMatchObject({ TWILIO_API_URL: 'inbox:', SMS_MODE: 'inbox' });
  });

  test('when production has no SMTP_URL, or SMTP_URL=inbox:, then loading stops with one line naming SMTP_URL', () => {
    expect(() => loadConfig({ ...TOKEN, NODE_ENV: 'production' })).toThrow(/^config: SMTP_URL is required in production/);
    expect(() => loadConfig({ ...TOKEN, NODE_ENV: 'production', SMTP_URL: '' })).toThrow(/^config: SMTP_URL is required in production/);
    expect(() => loadConfig({ ...TOKEN, NODE_ENV: 'production', SMTP_URL: 'inbox:' })).toThrow(/^config: SMTP_URL inbox: is for trying hark out/);
    expect(() => loadConfig({ ...TOKEN, NODE_ENV: 'production', SMTP_URL: 'smtp://mail:25', TWILIO_API_URL: 'inbox:' })).toThrow(/^config: TWILIO_API_URL/);
    expect(() => loadConfig({ ...TOKEN, SMTP_URL: 'http://mail' })).toThrow(/^config: SMTP_URL must be a URL/);
  });

  test('when production has no Twilio account (the compose file passes empty values), then SMS is off and there is no default token', () => {
    const c = loadConfig({ ...TOKEN, NODE_ENV: 'production', SMTP_URL: 'smtp://mail:1025', TWILIO_ACCOUNT_SID: '', TWILIO_AUTH_TOKEN: '' });
    expect(c).toMatchObject({ SMS_MODE: 'off', TWILIO_API_URL: 'https://api.twilio.com' });
    expect(c.TWILIO_AUTH_TOKEN).toBeUndefined();
    // A token alone is no account.
    expect(loadConfig({ ...TOKEN, NODE_ENV: 'production', SMTP_URL: 'smtp://mail:1025', TWILIO_AUTH_TOKEN: 'dev-twilio-token' }).SMS_MODE).toBe('off');
  });

  test('when the real entry point boots in production without SMTP_URL or with inbox:, then it exits 1 with one line naming SMTP_URL', async () => {
    for (const extra of [{}, { SMTP_URL: 'inbox:' }] as Array<Record<string, string>>) {
      const env: Record<string, string> = { PATH: process.env.PATH ?? '', ...TOKEN, NODE_ENV: 'production', ...extra };
      const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], { cwd: join(__dirname, '..'), env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((r) => child.once('exit', r));
      expect(code).toBe(1);
      const lines = stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^config: SMTP_URL /);
    }
  }, 60_000);
});

describe('production without Twilio', () => {
  test('when SMS is off, then an SMS campaign, an SMS automation step and an SMS test send are 422, the Twilio webhooks 404, and email works', async () => {
    const s = await startTestServer({ env: { NODE_ENV: 'production', SMTP_URL: 'smtp://127.0.0.1:9', TWILIO_ACCOUNT_SID: '', TWILIO_AUTH_TOKEN: '', HARK_SIGNING_SECRET: 's'.repeat(40) } });
    try {
      expect(s.deps.config.SMS_MODE).toBe('off');
      const ws = await newWorkspace(s.url, 'prod shop');
      await ws.api.patch('/v1/settings', { smsFrom: '+15005550006' });
      const sms = await ws.api.post('/v1/templates', { name: 'sms', channel: 'sms', body: 'Hi' });
      const email = await ws.api.post('/v1/templates', { name: 'e', channel: 'email', subject: 'S', body: '<p>x</p>' });
      const seg = await ws.api.post('/v1/segments', { name: 'all', definition: { field: 'createdDaysAgo', op: 'gte', value: 0 } });
      const c = await ws.api.post('/v1/campaigns', { name: 'c', channel: 'sms', templateId: sms.body.id, segmentIds: [seg.body.id] });
      expect(c.status).toBe(422);
      expect(c.body.error.details[0]).toMatchObject({ path: 'channel', message: expect.stringMatching(/TWILIO_ACCOUNT_SID/) });
      const a = await ws.api.post('/v1/automations', { name: 'a', trigger: { type: 'purchase' }, steps: [{ type: 'send', channel: 'email', templateId: email.body.id }, { type: 'send', channel: 'sms', templateId: sms.body.id }], enabled: true });
      expect(a.status).toBe(422);
      expect(a.body.error.details[0].path).toBe('steps.1.channel');
      const t = await ws.api.post(`/v1/templates/${sms.body.id}/test`, { to: ['+15125550100'] });
      expect(t.status).toBe(422);
      for (const path of ['/webhooks/twilio/status', '/webhooks/twilio/inbound']) {
        const r = await fetch(s.url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'x' }, body: 'From=%2B15125550100&Body=STOP' });
        expect(r.status).toBe(404);
      }
      expect((await ws.api.post('/v1/campaigns', { name: 'c', channel: 'email', templateId: email.body.id, segmentIds: [seg.body.id] })).status).toBe(201);
      expect((await ws.api.get('/v1/campaigns')).body.data).toHaveLength(1);
      expect((await ws.api.get('/v1/automations')).body.data).toHaveLength(0);
    } finally {
      await s.close();
    }
  });
});

describe('newcomer path: npm start', () => {
  const boot = (env: Record<string, string>) => {
    const child = spawn(process.execPath, ['-r', '@swc-node/register', 'src/main.ts'], { cwd: join(__dirname, '..'), env: { PATH: process.env.PATH ?? '', ...TOKEN, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout!.on('data', (d: Buffer) => (out.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out.stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, out, exited };
  };

  test.each([
    ['Postgres', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/hark' }, /^hark cannot reach Postgres at 127\.0\.0\.1:1 \(ECONNREFUSED\); start it: service postgresql start/],
    ['Redis', { DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: 'redis://127.0.0.1:1' }, /^hark cannot reach Redis at 127\.0\.0\.1:1 \(ECONNREFUSED\); start it: service redis-server start/],
  ])('when %s does not answer, then npm start stops with one line naming it, its address and the command that starts it', async (_what, env, line) => {
    const p = boot(env);
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('hung'), 20_000))]);
    p.child.kill('SIGKILL');
    expect(code).toBe(1);
    expect(p.out.stdout).toBe('');
    const lines = p.out.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(line);
  }, 30_000);

  test('when it starts in development, then the logs are readable lines and the first gives the console URL', async () => {
    const dbUrl = new URL(TEST_DATABASE_URL);
    dbUrl.pathname = `${dbUrl.pathname}_boot`;
    const p = boot({ NODE_ENV: 'development', PORT: '0', DATABASE_URL: dbUrl.toString(), QUEUE_PREFIX: `boot${process.pid}` });
    try {
      const end = Date.now() + 40_000;
      while (!/hark listening/.test(p.out.stdout) && Date.now() < end && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
      const lines = p.out.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\] INFO: hark starting: console at http:\/\/localhost:\d+\/app\//);
      expect(lines.find((l) => /hark listening/.test(l))).toMatch(/console http:\/\/localhost:\d+\/app\//);
      for (const l of lines) expect(l.startsWith('{')).toBe(false);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
      const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS "${dbUrl.pathname.slice(1)}" WITH (FORCE)`);
      await admin.end();
    }
  }, 60_000);
});
