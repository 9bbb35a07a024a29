import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { workspaceCounts } from './helpers/foundation-counts';

/** Bad input at the transport level (body, content type, size) on every write route, plus /docs and /metrics. */
let srv: TestServer;
beforeAll(async () => {
  // A small limit so that "too large" needs no megabytes; the mechanism is the one production uses.
  srv = await startTestServer({ env: { BODY_LIMIT: '64kb' } });
});
afterAll(async () => {
  await srv.close();
});

const errorBody = (code: string) => ({ error: { code, message: expect.any(String), details: expect.any(Array) } });
const purchase = { orderId: 'o-1', customer: { externalId: 'c-1' }, occurredAt: '2026-04-01T10:00:00Z', total: 10 };
const writes: [string, string, unknown][] = [
  ['PUT', '/v1/customers/c-1', { email: 'a@x.com' }],
  ['POST', '/v1/customers/batch', { customers: [{ externalId: 'c-1' }] }],
  ['POST', '/v1/purchases', purchase],
  ['POST', '/v1/purchases/batch', { purchases: [purchase] }],
  ['POST', '/v1/events', { type: 'page_view', customer: { externalId: 'c-1' }, occurredAt: '2026-04-01T10:00:00Z' }],
  ['POST', '/v1/events/batch', { events: [{ type: 'page_view', customer: { externalId: 'c-1' }, occurredAt: '2026-04-01T10:00:00Z' }] }],
  ['PATCH', '/v1/settings', { timezone: 'Europe/Paris' }],
];

describe('transport-level bad input', () => {
  test.each(writes)('when %s %s gets malformed JSON, then 400 invalid_json and nothing is written', async (method, path) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.raw(method, path, '{"email": "a@x.com",', { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(errorBody('invalid_json'));
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });

  test.each(writes)('when %s %s gets a body that is not JSON by its content type, then 415 and nothing is written', async (method, path, body) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const res = await ws.api.raw(method, path, JSON.stringify(body), { 'content-type': type });
      expect(res.status).toBe(415);
      expect(res.body).toEqual(errorBody('unsupported_media_type'));
    }
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });

  test.each(writes)('when %s %s gets a body over the size limit, then 413 and nothing is written', async (method, path) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const big = JSON.stringify({ customers: [{ externalId: 'x', firstName: 'y'.repeat(70 * 1024) }] });
    const res = await ws.api.raw(method, path, big, { 'content-type': 'application/json' });
    expect(res.status).toBe(413);
    expect(res.body).toEqual(errorBody('payload_too_large'));
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });

  test('when a JSON body is a bare array, a string or null, then 400 and nothing is written', async () => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    for (const raw of ['[]', '"purchase"', 'null', '42']) {
      const res = await ws.api.raw('POST', '/v1/purchases', raw, { 'content-type': 'application/json' });
      expect(res.status).toBe(400);
      expect(res.body.error.code).toMatch(/^(validation_failed|invalid_json)$/);
    }
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });

  test('when the operator posts a workspace with an unknown field or a bad time zone, then 400 and no workspace is made', async () => {
    const op = client(srv.url, 'test-operator-token-0123456789');
    const [{ n: before }] = await srv.deps.db('workspaces').count({ n: '*' });
    const extra = await op.post('/v1/workspaces', { name: 'x', plan: 'gold' });
    expect(extra.status).toBe(400);
    const tz = await op.post('/v1/workspaces', { name: 'x', timezone: 'Mars/Olympus' });
    expect(tz.status).toBe(400);
    expect(tz.body.error.details.map((d: { path: string }) => d.path)).toContain('timezone');
    const [{ n: after }] = await srv.deps.db('workspaces').count({ n: '*' });
    expect(after).toBe(before);
  });

  test('when a route does not exist, then 404 with the error body, not an HTML page', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.get('/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.body).toEqual(errorBody('not_found'));
  });
});

describe('/docs and /metrics', () => {
  test('when /docs is fetched, then it is a page whose script is served by hark itself and renders /openapi.json', async () => {
    const api = client(srv.url);
    const page = await api.get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const scripts = [...String(page.body).matchAll(/<script[^>]*src="([^"]+)"/g)].map((m) => m[1]!);
    expect(scripts).toEqual(['/docs/render.js']);
    expect(String(page.body)).not.toMatch(/https?:\/\//); // no CDN, no third-party asset
    const js = await api.get('/docs/render.js');
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(String(js.body)).toContain("fetch('/openapi.json')");
    // The script must at least parse as JavaScript.
    expect(() => new Function(String(js.body))).not.toThrow();
  });

  test('when /openapi.json is fetched, then every foundation endpoint is in it with its body schema', async () => {
    const doc = (await client(srv.url).get('/openapi.json')).body;
    const expected: [string, string][] = [
      ['post', '/v1/workspaces'], ['post', '/v1/api-keys'], ['get', '/v1/api-keys'], ['delete', '/v1/api-keys/{id}'],
      ['get', '/v1/settings'], ['patch', '/v1/settings'],
      ['put', '/v1/customers/{externalId}'], ['get', '/v1/customers/{externalId}'], ['delete', '/v1/customers/{externalId}'],
      ['get', '/v1/customers/{externalId}/export'], ['post', '/v1/customers/batch'],
      ['post', '/v1/purchases'], ['post', '/v1/purchases/batch'], ['post', '/v1/purchases/{orderId}/refund'],
      ['post', '/v1/events'], ['post', '/v1/events/batch'],
      ['get', '/healthz'], ['get', '/readyz'], ['get', '/metrics'],
    ];
    for (const [method, path] of expected) expect(doc.paths[path]?.[method]).toBeDefined();
    const body = doc.paths['/v1/purchases'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['orderId', 'customer', 'occurredAt', 'total']));
    expect(body.additionalProperties).toBe(false);
  });

  test('when requests have been served, then /metrics counts them by route pattern with latencies, and shows queue depths', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/m-1', { email: 'm@x.com' });
    await ws.api.put('/v1/customers/m-2', { email: 'n@x.com' });
    const text = String((await client(srv.url).get('/metrics')).body);
    const line = text.split('\n').find((l) => l.startsWith('hark_http_requests_total{') && l.includes('route="/v1/customers/:externalId"') && l.includes('method="PUT"') && l.includes('status="201"'));
    expect(line).toBeDefined();
    expect(Number(line!.split(' ').pop())).toBeGreaterThanOrEqual(2);
    expect(text).not.toContain('m-1'); // ids never become labels
    expect(text).toMatch(/hark_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/customers\/:externalId"/);
    expect(text).toMatch(/hark_queue_jobs\{queue="hark-maintenance",state="waiting"\} \d+/);
  });
});
