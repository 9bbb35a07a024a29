import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';

/** Issue 15, security items 3 and 8: segment inlining is bounded; lists refuse garbage cursors; the /u pages cannot be framed. */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ env: { HARK_SIGNING_SECRET: 'test-signing-secret-0123456789-abcdef' } });
});
afterAll(async () => srv.close());

const garbage = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('segment references are inlined up to 1000 nodes', () => {
  test('when S3 references S2 199 times and S2 references S1 199 times, then S3 is a 422 naming the path, found before anything large is built', async () => {
    const ws = await newWorkspace(srv.url, 'inline');
    const s1 = await ws.api.post('/v1/segments', { name: 'S1', definition: { field: 'city', op: 'eq', value: 'Austin' } });
    expect(s1.status).toBe(201);
    const refs = (id: string) => ({ any: Array.from({ length: 199 }, () => ({ segment: id })) });
    const s2 = await ws.api.post('/v1/segments', { name: 'S2', definition: refs(s1.body.id) });
    expect(s2.status).toBe(201); // 1 + 199 nodes
    const t0 = Date.now();
    const s3 = await ws.api.post('/v1/segments', { name: 'S3', definition: refs(s2.body.id) });
    expect(s3.status).toBe(422);
    expect(s3.body.error.message).toMatch(/1000 nodes/);
    expect(s3.body.error.details[0].path).toMatch(/^definition\.any\.\d+\.segment$/);
    expect(Date.now() - t0).toBeLessThan(2000);
    // A preview is expanded the same way.
    const prev = await ws.api.post('/v1/segments/preview', { definition: refs(s2.body.id) });
    expect(prev.status).toBe(422);
  });

  test('when the inlined tree has 1000 nodes or fewer, then it is accepted', async () => {
    const ws = await newWorkspace(srv.url, 'inline-ok');
    const s1 = await ws.api.post('/v1/segments', { name: 'S1', definition: { all: [{ field: 'city', op: 'eq', value: 'Austin' }, { field: 'country', op: 'eq', value: 'US' }, { preset: 'vip' }, { preset: 'new' }] } });
    // 1 + 199 * 5 = 996 nodes
    const s2 = await ws.api.post('/v1/segments', { name: 'S2', definition: { any: Array.from({ length: 199 }, () => ({ segment: s1.body.id })) } });
    expect(s2.status).toBe(201);
    // One more node than that, through an edit of S1 that every dependent would inline: refused, S1 unchanged.
    const grow = await ws.api.patch(`/v1/segments/${s1.body.id}`, { definition: { all: [{ field: 'city', op: 'eq', value: 'Austin' }, { field: 'country', op: 'eq', value: 'US' }, { preset: 'vip' }, { preset: 'new' }, { preset: 'lapsed' }] } });
    expect(grow.status).toBe(422);
    expect((await ws.api.get(`/v1/segments/${s1.body.id}`)).body.definition.all).toHaveLength(4);
  });
});

describe('list cursors', () => {
  test.each([
    ['/v1/campaigns', { t: 'not a time', id: 'x' }],
    ['/v1/webhooks', { t: 'garbage', id: 'nope' }],
    ['/v1/webhooks', { t: '2026-01-01T00:00:00Z', id: 'not-a-uuid' }],
    ['/v1/templates', { t: 'yesterday', id: '00000000-0000-0000-0000-000000000000' }],
    ['/v1/segments', { t: 'yesterday', id: '00000000-0000-0000-0000-000000000000' }],
    ['/v1/automations', { t: '', id: '00000000-0000-0000-0000-000000000000' }],
    ['/v1/campaigns', 'not base64 json at all'],
  ])('when %s gets a malformed cursor (%j), then 400 invalid_cursor, not 500', async (path, cursor) => {
    const ws = await newWorkspace(srv.url, 'cursors');
    const c = typeof cursor === 'string' ? cursor : garbage(cursor);
    const res = await ws.api.get(`${path}?cursor=${encodeURIComponent(c)}`);
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_cursor');
  });

  test('when the campaign list is asked for 1000, then it answers (the contract maximum), and 1001 is a 400', async () => {
    const ws = await newWorkspace(srv.url, 'limits');
    expect((await ws.api.get('/v1/campaigns?limit=1000')).status).toBe(200);
    expect((await ws.api.get('/v1/campaigns?limit=1001')).status).toBe(400);
  });
});

describe('public pages', () => {
  test('when an unsubscribe page is served (valid link or not), then it carries a CSP that forbids framing and scripts', async () => {
    const res = await fetch(`${srv.url}/u/garbage-token`);
    expect(res.status).toBe(400);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });
});

describe('sender allow-lists', () => {
  let restricted: TestServer;
  beforeAll(async () => {
    restricted = await startTestServer({ env: { SENDER_DOMAINS: 'shop.example, news.other.example', SMS_SENDERS: '+15125550100,SHOPCO' } });
  });
  afterAll(async () => restricted.close());

  test('when the operator set SENDER_DOMAINS and SMS_SENDERS, then a workspace cannot send as anyone else (422, settings unchanged)', async () => {
    const ws = await newWorkspace(restricted.url, 'senders');
    const bad = await ws.api.patch('/v1/settings', { fromEmail: 'ceo@bank.example', smsFrom: '+15125550999' });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details.map((d: { path: string }) => d.path)).toEqual(['fromEmail', 'smsFrom']);
    expect((await ws.api.patch('/v1/settings', { fromEmail: 'x@evilshop.example' })).status).toBe(422);
    expect((await ws.api.get('/v1/settings')).body.fromEmail).toBeNull();
    expect((await ws.api.patch('/v1/settings', { fromEmail: 'deals@mail.shop.example', smsFrom: 'SHOPCO' })).status).toBe(200);
    expect((await ws.api.patch('/v1/settings', { fromEmail: 'a@news.other.example', smsFrom: '+15125550100' })).status).toBe(200);
  });

  test('when no list is set, then any sender is accepted, as before', async () => {
    const ws = await newWorkspace(srv.url, 'senders-open');
    expect((await ws.api.patch('/v1/settings', { fromEmail: 'ceo@bank.example', smsFrom: '+15125550999' })).status).toBe(200);
  });
});
