import { until as untilMs } from './helpers/until';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from 'bullmq';
import { ManualClock } from '../src/clock';
import { recordMessageEvents } from '../src/messages/events';
import { startResultsWorker } from '../workers/results-worker';
import { startWebhookWorker } from '../workers/webhook-worker';
import { newWorkspace } from './helpers/api';
import { customerId, DAY, HOUR, makeCampaign, makeMessage } from './helpers/results-factory';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Standard Webhooks, verified by hand (node:crypto, not the library hark signs with):
 * signature = base64(HMAC-SHA256(base64decode(secret without "whsec_"), `${id}.${timestamp}.${body}`)),
 * sent as space-separated "v1,<sig>" entries.
 */
function verifies(secret: string, h: IncomingHttpHeaders, body: string): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(`${h['webhook-id']}.${h['webhook-timestamp']}.${body}`).digest();
  return String(h['webhook-signature'] ?? '')
    .split(' ')
    .some((part) => {
      const [v, sig] = part.split(',');
      const got = Buffer.from(sig ?? '', 'base64');
      return v === 'v1' && got.length === expected.length && timingSafeEqual(got, expected);
    });
}

interface Hit { path: string; headers: IncomingHttpHeaders; body: string; answered: number }

/** A receiver whose paths behave differently: /ok accepts, /flaky fails twice per webhook-id, /down always fails. */
async function startReceiver() {
  const hits: Hit[] = [];
  const seen = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      const n = (seen.get(`${req.url}:${id}`) ?? 0) + 1;
      seen.set(`${req.url}:${id}`, n);
      const answered = req.url === '/down' || (req.url === '/flaky' && n <= 2) ? 503 : 204;
      hits.push({ path: req.url!, headers: req.headers, body, answered });
      res.statusCode = answered;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => new Promise((r) => server.close(r)) };
}


const clock = new ManualClock(new Date());
const until = <T>(what: string, fn: () => T | Promise<T>, ms = 15_000) => untilMs(what, fn, ms);

let srv: TestServer;
let rx: Awaited<ReturnType<typeof startReceiver>>;
let worker: Worker;
let attribution: Worker;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
let messageId: string;
const ep: Record<string, { id: string; secret: string }> = {};

beforeAll(async () => {
  srv = await startTestServer({ clock, env: { WEBHOOK_ALLOW_PRIVATE: 'true' } });
  rx = await startReceiver();
  ws = await newWorkspace(srv.url);
  for (const [name, body] of Object.entries({
    ok: { url: `${rx.url}/ok` },
    flaky: { url: `${rx.url}/flaky`, eventTypes: ['delivered', 'converted'] },
    down: { url: `${rx.url}/down`, eventTypes: ['delivered'] },
  })) {
    const res = await ws.api.post('/v1/webhooks', body);
    expect(res.status).toBe(201);
    expect(res.body.secret).toMatch(/^whsec_/);
    ep[name] = { id: res.body.id, secret: res.body.secret };
  }
  await ws.api.put('/v1/customers/wh-1', { email: 'wh-1@example.test' });
  const cid = await makeCampaign(srv.deps.db, ws.id, { startedAt: clock.now() });
  messageId = await makeMessage(srv.deps.db, ws.id, { campaignId: cid, customerId: await customerId(srv.deps.db, ws.id, 'wh-1'), status: 'delivered', sentAt: clock.now(), deliveredAt: clock.now() });
  worker = await startWebhookWorker(srv.deps, { baseDelayMs: 100, maxAttempts: 4, fanoutEveryMs: 150 });
  attribution = await startResultsWorker(srv.deps, { everyMs: 200 });
});
afterAll(async () => {
  await worker?.close();
  await attribution?.close();
  await rx?.close();
  await srv?.close();
});

const event = (type: 'delivered' | 'clicked') => recordMessageEvents(srv.deps.db, [{ workspaceId: ws.id, messageId, type, occurredAt: clock.now(), data: {} }]);
const hitsOf = (path: string, type?: string) => rx.hits.filter((h) => h.path === path && (!type || JSON.parse(h.body).type === type));

describe('outgoing webhooks', () => {
  test('when a message is delivered and clicked, then subscribed endpoints get signed events an independent verifier accepts', async () => {
    await event('delivered');
    await event('clicked');
    await until('two events at /ok', () => hitsOf('/ok').length >= 2);
    const types = hitsOf('/ok').map((h) => JSON.parse(h.body).type).sort();
    expect(types).toEqual(['message.clicked', 'message.delivered']);
    for (const h of hitsOf('/ok')) {
      expect(verifies(ep.ok.secret, h.headers, h.body)).toBe(true);
      expect(verifies(ep.flaky.secret, h.headers, h.body)).toBe(false);
      expect(h.headers['webhook-id']).toMatch(/^msg_/);
      const p = JSON.parse(h.body);
      expect(p.data).toEqual(expect.objectContaining({ messageId, customerExternalId: 'wh-1', channel: 'email' }));
      expect(h.body).not.toContain('@example.test'); // no addresses in payloads
    }
  });

  test('when an endpoint fails twice, then the third attempt with the same webhook-id is accepted and the delivery is recorded', async () => {
    await until('flaky accepted', () => hitsOf('/flaky').some((h) => h.answered === 204));
    const attempts = hitsOf('/flaky', 'message.delivered');
    expect(attempts.map((h) => h.answered)).toEqual([503, 503, 204]);
    expect(new Set(attempts.map((h) => h.headers['webhook-id'])).size).toBe(1);
    for (const h of attempts) expect(verifies(ep.flaky.secret, h.headers, h.body)).toBe(true);
    expect(hitsOf('/flaky', 'message.clicked')).toHaveLength(0); // not subscribed
    // The receiver has answered before the worker records the answer: wait for the record.
    const res = await until('flaky delivery recorded', async () => {
      const r = await ws.api.get(`/v1/webhooks/${ep.flaky.id}/deliveries`);
      return r.body.data[0]?.status === 'delivered' ? r : undefined;
    });
    expect(res!.body.data).toEqual([expect.objectContaining({ type: 'message.delivered', status: 'delivered', attempts: 3, lastStatusCode: 204 })]);
  });

  test('when an endpoint keeps failing, then the delivery fails after the last attempt', async () => {
    const failed = await until('failed delivery', async () => {
      const res = await ws.api.get(`/v1/webhooks/${ep.down.id}/deliveries?status=failed`);
      return res.body.data[0];
    });
    expect(failed).toEqual(expect.objectContaining({ attempts: 4, lastStatusCode: 503, lastError: 'HTTP 503' }));
    expect(hitsOf('/down')).toHaveLength(4);
  });

  test('when a purchase converts the message, then the attribution worker marks it and a converted event is delivered', async () => {
    await ws.api.post('/v1/purchases', { orderId: 'wh-o1', customer: { externalId: 'wh-1' }, occurredAt: new Date(clock.now().getTime() + HOUR).toISOString(), total: 25 });
    const hit = await until('converted at /ok', () => hitsOf('/ok', 'message.converted')[0]);
    expect(JSON.parse(hit.body).data).toEqual(expect.objectContaining({ messageId, via: 'delivery' }));
    await until('converted at /flaky', () => hitsOf('/flaky', 'message.converted').some((h) => h.answered === 204));
  });

  test('when the secret is rotated, then both secrets sign during the grace period and only the new one after it', async () => {
    const old = ep.ok.secret;
    const rot = await ws.api.post(`/v1/webhooks/${ep.ok.id}/rotate`, { graceHours: 1 });
    expect(rot.status).toBe(200);
    const fresh = rot.body.secret as string;
    expect(fresh).not.toBe(old);
    const before = hitsOf('/ok').length;
    await event('clicked');
    const during = await until('event during grace', () => hitsOf('/ok')[before]);
    expect(String(during.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verifies(old, during.headers, during.body)).toBe(true);
    expect(verifies(fresh, during.headers, during.body)).toBe(true);

    clock.advance(2 * HOUR);
    await event('clicked');
    const after = await until('event after grace', () => hitsOf('/ok')[before + 1]);
    expect(verifies(fresh, after.headers, after.body)).toBe(true);
    expect(verifies(old, after.headers, after.body)).toBe(false);
  });

  test('when input is bad or the endpoint is foreign or deleted, then 400 and 404', async () => {
    const bad = await ws.api.post('/v1/webhooks', { url: 'ftp://example.test/x', eventTypes: ['bought'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: any) => d.path).sort()).toEqual(['eventTypes.0', 'url']);
    const other = await newWorkspace(srv.url, 'other');
    expect((await other.api.get(`/v1/webhooks/${ep.ok.id}`)).status).toBe(404);
    expect((await other.api.post(`/v1/webhooks/${ep.ok.id}/rotate`, {})).status).toBe(404);
    const list = await ws.api.get('/v1/webhooks');
    expect(list.body.data).toHaveLength(3);
    expect(list.body.data[0].secret).toBeUndefined();
    expect((await ws.api.delete(`/v1/webhooks/${ep.down.id}`)).status).toBe(204);
    expect((await ws.api.get(`/v1/webhooks/${ep.down.id}`)).status).toBe(404);
  });
});
