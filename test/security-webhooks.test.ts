import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { insertEndpoint } from '../src/webhooks/repo';
import { attemptDelivery } from '../src/webhooks/service';
import { isPublicAddress, pinnedLookup } from '../src/webhooks/address';

/** Issue 15, security item 4: outgoing webhooks reach public addresses only (SSRF). */
let srv: TestServer;
let rx: Server;
let hits = 0;
let port = 0;
beforeAll(async () => {
  srv = await startTestServer();
  rx = createServer((_req, res) => {
    hits++;
    res.writeHead(200).end('ok');
  }).listen(0, '127.0.0.1');
  await new Promise((r) => rx.once('listening', r));
  port = (rx.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((r) => rx.close(r));
  await srv.close();
});

describe('at creation', () => {
  test.each([
    'http://127.0.0.1:6379/',
    'http://localhost:5432/', // a name that resolves to loopback
    'http://10.0.0.5/hook',
    'http://172.16.1.1/hook',
    'http://192.168.0.1/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://100.64.0.1/hook',
    'http://0.0.0.0/hook',
    'http://2130706433/hook', // 127.0.0.1 as one number
    'http://0x7f.1/hook',
    'http://[::1]/hook',
    'http://[fd12:3456::1]/hook',
    'http://[fe80::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[::ffff:a9fe:a9fe]/hook', // 169.254.169.254, IPv4-mapped
    'http://[64:ff9b::a00:1]/hook', // 10.0.0.1 through NAT64
  ])('when the URL is %s, then 422 and nothing is stored', async (url) => {
    const ws = await newWorkspace(srv.url, 'ssrf');
    const res = await ws.api.post('/v1/webhooks', { url });
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe('url');
    expect((await ws.api.get('/v1/webhooks')).body.data).toEqual([]);
  });

  test('when a public address is given, then it is accepted, and changing it to a private one is a 422', async () => {
    const ws = await newWorkspace(srv.url, 'ssrf-ok');
    const res = await ws.api.post('/v1/webhooks', { url: 'https://93.184.215.14/hooks/hark' });
    expect(res.status).toBe(201);
    const patch = await ws.api.patch(`/v1/webhooks/${res.body.id}`, { url: 'http://169.254.169.254/' });
    expect(patch.status).toBe(422);
    expect((await ws.api.get(`/v1/webhooks/${res.body.id}`)).body.url).toBe('https://93.184.215.14/hooks/hark');
  });

  test('the address classification', () => {
    for (const a of ['8.8.8.8', '2001:4860:4860::8888', '::ffff:8.8.8.8']) expect(isPublicAddress(a)).toBe(true);
    for (const a of ['127.0.0.1', '10.0.0.1', '100.100.1.1', '169.254.169.254', '::1', 'fc00::1', 'fe80::2', '::ffff:10.0.0.1', '::', 'not an ip']) expect(isPublicAddress(a)).toBe(false);
  });
});

describe('at delivery', () => {
  async function pendingDelivery(url: string) {
    const ws = await newWorkspace(srv.url, 'ssrf-deliver');
    // Stored as an endpoint made before the check existed (or under WEBHOOK_ALLOW_PRIVATE=true).
    const ep = await insertEndpoint(srv.deps.db, { workspace_id: ws.id, url, description: null, event_types: null, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0' }, new Date());
    const [m] = await srv.deps.db('messages').insert({ workspace_id: ws.id, channel: 'email', address: 'a@example.com', status: 'sent', sent_at: new Date() }).returning('id');
    const [e] = await srv.deps.db('message_events').insert({ workspace_id: ws.id, message_id: m.id, type: 'sent', occurred_at: new Date(), data: {} }).returning('id');
    const [d] = await srv.deps.db('webhook_deliveries')
      .insert({ workspace_id: ws.id, endpoint_id: ep.id, message_event_id: e.id, event_type: 'sent', webhook_id: `msg_${Date.now()}${Math.random()}`, payload: { type: 'message.sent' }, status: 'pending', next_attempt_at: new Date(), created_at: new Date() })
      .returning('id');
    return { ws, ep, id: String(d.id) };
  }

  test.each(['ip', 'name'])('when a stored endpoint points at a loopback %s, then the delivery fails at once without connecting, and the list shows no port detail', async (kind) => {
    const { ws, ep, id } = await pendingDelivery(kind === 'ip' ? `http://127.0.0.1:${port}/in` : `http://localhost:${port}/in`);
    const before = hits;
    const r = await attemptDelivery(srv.deps.db, id, new Date(), { attempt: 1, maxAttempts: 8, nextDelayMs: 1000, timeoutMs: 2000 });
    expect(r).toBe('failed');
    expect(hits).toBe(before);
    const list = await ws.api.get(`/v1/webhooks/${ep.id}/deliveries`);
    expect(list.body.data[0]).toMatchObject({ status: 'failed', lastStatusCode: null, lastError: 'address not allowed' });
    expect(JSON.stringify(list.body.data[0])).not.toContain(String(port));
  });

  test('when WEBHOOK_ALLOW_PRIVATE is on, then the same endpoint is delivered to, through the pinned lookup', async () => {
    const { id } = await pendingDelivery(`http://localhost:${port}/in`);
    const before = hits;
    expect(await attemptDelivery(srv.deps.db, id, new Date(), { attempt: 1, maxAttempts: 8, nextDelayMs: 1000, timeoutMs: 2000, allowPrivate: true })).toBe('delivered');
    expect(hits).toBe(before + 1);
  });

  test('the lookup the socket connects through refuses a name that resolves to a private address', async () => {
    const err = await new Promise((resolve) => pinnedLookup(false)('localhost', {}, (e: unknown) => resolve(e)));
    expect(err).toMatchObject({ message: 'address not allowed' });
  });
});
