import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { workspaceCounts } from './helpers/foundation-counts';

/**
 * Plain JSON posts to the ingest endpoints are served ahead of express (src/http/fast.ts); every
 * other request to them goes through the express chain. Both must answer alike.
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const purchase = (orderId: string) => ({ orderId, customer: { externalId: 'fp-1' }, occurredAt: '2026-04-01T10:00:00Z', total: 10, items: [{ sku: 'A', category: 'shoes', quantity: 1, unitPrice: 10 }] });

/** A raw request: chunked when no Content-Length is given, so not one the fast path takes. */
function raw(path: string, key: string, body: Buffer, headers: Record<string, string>) {
  const { hostname, port } = new URL(srv.url);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }>((resolve, reject) => {
    const req = http.request({ hostname, port, path, method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', reject);
    if (headers['content-length'] === undefined) req.write(body.subarray(0, 5)); // forces chunked encoding
    req.end(headers['content-length'] === undefined ? body.subarray(5) : body);
  });
}

describe('the fast path for plain JSON ingest requests', () => {
  test('when a plain purchase is posted, then it is answered with the app headers and counted in /metrics under its route', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.post('/v1/purchases', purchase('fp-o1'));
    expect(res.status).toBe(201);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const text = String((await client(srv.url).get('/metrics')).body);
    expect(text).toMatch(/hark_http_requests_total\{method="POST",route="\/v1\/purchases",status="201"\} [1-9]/);
    expect(text).toMatch(/hark_http_request_duration_seconds_bucket\{[^}]*route="\/v1\/purchases"/);
  });

  test('when the same purchase comes chunked, gzipped, with a query string or with a BOM, then each path stores it once and answers alike', async () => {
    const ws = await newWorkspace(srv.url);
    const body = (o: string) => Buffer.from(JSON.stringify(purchase(o)));
    const plain = await raw('/v1/purchases', ws.key, body('fp-a'), { 'content-type': 'application/json', 'content-length': String(body('fp-a').length) });
    const chunked = await raw('/v1/purchases', ws.key, body('fp-b'), { 'content-type': 'application/json' });
    const gz = gzipSync(body('fp-c'));
    const gzipped = await raw('/v1/purchases', ws.key, gz, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(gz.length) });
    const query = await raw('/v1/purchases?source=till', ws.key, body('fp-d'), { 'content-type': 'application/json', 'content-length': String(body('fp-d').length) });
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body('fp-e')]);
    const withBom = await raw('/v1/purchases', ws.key, bom, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(bom.length) });
    for (const [r, o] of [[plain, 'fp-a'], [chunked, 'fp-b'], [gzipped, 'fp-c'], [query, 'fp-d'], [withBom, 'fp-e']] as const) {
      expect(r.status).toBe(201);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.body).toMatchObject({ orderId: o, total: 10, customer: { externalId: 'fp-1' }, items: [{ sku: 'A', category: 'shoes', quantity: 1, unitPrice: 10 }] });
    }
    const replay = await raw('/v1/purchases', ws.key, body('fp-b'), { 'content-type': 'application/json', 'content-length': String(body('fp-b').length) });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(chunked.body);
    expect((await ws.api.get('/v1/customers/fp-1')).body.stats).toMatchObject({ purchaseCount: 5, totalSpent: 50, topCategory: 'shoes' });
  });

  test.each([
    ['plain', true],
    ['chunked', false],
  ])('when a %s request has malformed JSON and a bad key, then it is 401 (the key is checked before the body is parsed, issue 15), and with a good key 400 invalid_json', async (_how, sized) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const headers = (b: Buffer): Record<string, string> => ({ 'content-type': 'application/json', ...(sized ? { 'content-length': String(b.length) } : {}) });
    const bad = Buffer.from('{"orderId": "x",');
    const r1 = await raw('/v1/purchases/batch', 'hark_ing_not-a-key', bad, headers(bad));
    expect(r1.status).toBe(401);
    const r0 = await raw('/v1/purchases/batch', ws.key, bad, headers(bad));
    expect(r0.status).toBe(400);
    expect(r0.body.error.code).toBe('invalid_json');
    const good = Buffer.from(JSON.stringify(purchase('fp-k')));
    const r2 = await raw('/v1/purchases', 'hark_ing_not-a-key', good, headers(good));
    expect(r2.status).toBe(401);
    expect(r2.body).toEqual({ error: { code: 'unauthorized', message: 'invalid API key', details: [] } });
    const negative = Buffer.from(JSON.stringify({ ...purchase('fp-z'), total: -1 }));
    const r3 = await raw('/v1/purchases', ws.key, negative, headers(negative));
    expect(r3.status).toBe(400);
    expect(r3.body.error.details.map((d: { path: string }) => d.path)).toContain('total');
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });
});
