import type { Worker } from 'bullmq';
import { startTestServer, TestServer } from './helpers/server';
import { client } from './helpers/api';
import { closeWorkers, startWorkers } from '../workers/index';
import { DEMO_NAME, runDemo } from '../src/demo/main';
import { loadRetail } from '../src/demo/retail';

/** npm run demo's work (runDemo) against a running hark with the inbox default and its real workers. */
jest.setTimeout(120_000);

let srv: TestServer;
let workers: Worker[] = [];
beforeAll(async () => {
  srv = await startTestServer({ env: { TWILIO_API_URL: 'inbox:' } });
  workers = await startWorkers(srv.deps);
});
afterAll(async () => {
  await closeWorkers(workers);
  await srv.close();
});

test('when the demo runs twice, then one "Demo store" holds the retail history up to yesterday, the four segments and the win-back, whose emails are in the inbox within a minute', async () => {
  const first = await runDemo(srv.deps);
  const r = await runDemo(srv.deps);
  expect(r.workspaceId).not.toBe(first.workspaceId);
  expect(await srv.deps.db('workspaces').where({ name: DEMO_NAME }).pluck('id')).toEqual([r.workspaceId]);
  // The first run's rows went with it, the tables without a foreign key to workspaces included.
  expect((await srv.deps.db('customers').where({ workspace_id: first.workspaceId }).count({ n: '*' }))[0]!.n).toBe('0');
  expect((await srv.deps.db('purchases').where({ workspace_id: first.workspaceId }).count({ n: '*' }))[0]!.n).toBe('0');

  const api = client(srv.url, r.apiKey);
  expect(r.customers).toBeGreaterThan(3000);
  expect(r.purchases).toBeGreaterThan(10000);
  const last = await srv.deps.db('purchases').where({ workspace_id: r.workspaceId }).max({ at: 'occurred_at' });
  const yesterday = new Date(Date.now() - 86400_000).toISOString().slice(0, 10);
  expect(new Date(last[0]!.at).toISOString().slice(0, 10)).toBe(yesterday);
  for (const name of ['fading', 'vip', 'lapsed', 'new']) expect(r.segments[name]!.count).toBeGreaterThan(0);
  expect(r.entered).toBe(r.segments.fading!.count);
  const automation = await api.get(`/v1/automations/${r.automationId}`);
  expect(automation.body.steps.map((s: { type: string; channel?: string; hours?: number }) => [s.type, s.channel ?? s.hours])).toEqual([['send', 'email'], ['wait', 168], ['send', 'sms']]);
  expect(automation.body.exitWhen).toBe('purchased');
  expect(r.consoleUrl).toBe(`${srv.deps.config.PUBLIC_URL}/app/`);

  const started = Date.now();
  let inbox: Array<{ to: string; subject: string; channel: string }> = [];
  while (Date.now() - started < 60_000) {
    inbox = (await api.get('/v1/inbox?channel=email&limit=1000')).body.data;
    if (inbox.length >= r.entered) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  process.stdout.write(`demo: ${r.entered} win-back emails in the inbox ${Date.now() - started} ms after the demo finished\n`);
  expect(inbox).toHaveLength(r.entered);
  expect(new Set(inbox.map((m) => m.to)).size).toBe(r.entered);
  expect(inbox.every((m) => m.to.endsWith('@example.com'))).toBe(true);
});

test('when the demo is loaded at any hour, then the last order falls on the given day (not the day before)', () => {
  for (const at of ['2026-12-07T00:05:00Z', '2026-12-07T11:00:00Z', '2026-12-07T23:55:00Z']) {
    const { purchases } = loadRetail('test/fixtures/data/online-retail-sample.csv', new Date(at));
    const last = purchases.reduce((m, p) => (p.occurredAt > m ? p.occurredAt : m), '');
    expect([at, last.slice(0, 10)]).toEqual([at, '2026-12-07']);
  }
});
