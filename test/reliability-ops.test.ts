import { randomUUID } from 'node:crypto';
import { heartbeat } from '../src/messages/repo';
import { sweepOutbox } from '../src/messages/sweeper';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Smaller reliability defects, against the real Postgres and Redis: liveness judged by the
 * database's clock, segments that running sends depend on, and refunds retried without a name.
 */
jest.setTimeout(60_000);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

/** Only Date is faked: timers, sockets and the database keep real time. */
const REAL_TIMERS = ['hrtime', 'nextTick', 'performance', 'queueMicrotask', 'setImmediate', 'clearImmediate', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] as const;

describe('heartbeats', () => {
  test("when a live worker's wall clock runs 60 s behind, then another worker's sweep does not take its sending rows for orphans", async () => {
    const db = server.deps.db;
    const ws = await newWorkspace(server.url, 'skew shop');
    const slow = randomUUID();
    const [m] = await db('messages').insert({ workspace_id: ws.id, channel: 'email', address: 'a@skew.example', status: 'sending', claimed_by: slow, claimed_at: new Date() }).returning('id');
    // The slow worker's own sweep: its heartbeat, seen through a process clock a minute late.
    jest.useFakeTimers({ now: Date.now() - 60_000, doNotFake: [...REAL_TIMERS] });
    try {
      await sweepOutbox(server.deps, slow, { deadAfterMs: 15_000, requestLeaseMs: 600_000, idleLeaseMs: 600_000 });
    } finally {
      jest.useRealTimers();
    }
    // A healthy worker sweeps a moment later.
    const other = randomUUID();
    await heartbeat(db, other);
    await sweepOutbox(server.deps, other, { deadAfterMs: 15_000, requestLeaseMs: 600_000, idleLeaseMs: 600_000 });
    expect((await db('messages').where({ id: m.id }).first('status')).status).toBe('sending');
    await db('dispatch_workers').whereIn('id', [slow, other]).del();
    await db('messages').where({ id: m.id }).del();
  });
});

describe('deleting a segment in use', () => {
  async function setup() {
    const ws = await newWorkspace(server.url, 'segment shop', { timezone: 'UTC' });
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    const seg = (await ws.api.post('/v1/segments', { name: 'riga', definition: { field: 'city', op: 'eq', value: 'Riga' } })).body.id;
    const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Hello</p>' })).body.id;
    return { ws, seg, tpl };
  }

  test('when a scheduled campaign uses the segment, then 409 names the campaign and the segment stays', async () => {
    const { ws, seg, tpl } = await setup();
    const c = (await ws.api.post('/v1/campaigns', { name: 'spring', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;
    expect((await ws.api.post(`/v1/campaigns/${c}/schedule`, { at: new Date(Date.now() + 86_400_000).toISOString() })).status).toBe(200);
    const res = await ws.api.delete(`/v1/segments/${seg}`);
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    expect(res.body.error.details).toEqual([{ path: 'id', message: `used by campaign ${c} (scheduled)` }]);
    expect((await ws.api.get(`/v1/segments/${seg}`)).status).toBe(200);
    // Once the campaign is cancelled, the segment can go.
    expect((await ws.api.post(`/v1/campaigns/${c}/cancel`)).status).toBe(200);
    expect((await ws.api.delete(`/v1/segments/${seg}`)).status).toBe(204);
  });

  test('when an enabled automation is triggered by the segment, then 409 names the automation', async () => {
    const { ws, seg, tpl } = await setup();
    const a = await ws.api.post('/v1/automations', { name: 'welcome', trigger: { type: 'segmentEntry', segmentId: seg }, steps: [{ type: 'send', channel: 'email', templateId: tpl }], enabled: true });
    expect(a.status).toBe(201);
    const res = await ws.api.delete(`/v1/segments/${seg}`);
    expect(res.status).toBe(409);
    expect(res.body.error.details).toEqual([{ path: 'id', message: `used by automation ${a.body.id}` }]);
  });
});

describe('refunds without refundId', () => {
  test('when the same unnamed refund is sent twice (a retry), then it refunds once and the retry is answered as a replay', async () => {
    const ws = await newWorkspace(server.url);
    const p = await ws.api.post('/v1/purchases', { orderId: 'rr-1', customer: { externalId: 'p-1' }, occurredAt: new Date().toISOString(), total: 100 });
    expect(p.status).toBe(201);
    const first = await ws.api.post('/v1/purchases/rr-1/refund', { amount: 30 });
    const retry = await ws.api.post('/v1/purchases/rr-1/refund', { amount: 30 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ refunded: 30, replayed: false });
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ refunded: 30, replayed: true });
    expect((await ws.api.get('/v1/customers/p-1')).body.stats.totalSpent).toBe(70);
    // A different amount is a different refund.
    expect((await ws.api.post('/v1/purchases/rr-1/refund', { amount: 20 })).body).toMatchObject({ refunded: 50, replayed: false });
  });
});
