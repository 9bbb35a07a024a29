import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import pg from 'pg';
import { buildApp } from '../src/app';
import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { TEST_DATABASE_URL } from './helpers/env';

/** Issue 15, security item 6: per-key rate limit across API processes, authentication before parsing, statement timeout. */
describe('per-key rate limit', () => {
  let srv: TestServer;
  let second: Server;
  let secondUrl: string;
  beforeAll(async () => {
    srv = await startTestServer({ env: { API_RATE_PER_MINUTE: '5' } });
    // A second API process: its own app and limiter, the same Redis and prefix.
    second = buildApp({ ...srv.deps }).listen(0);
    await new Promise((r) => second.once('listening', r));
    secondUrl = `http://127.0.0.1:${(second.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((r) => second.close(r));
    await srv.close();
  });

  test('when one key makes more than API_RATE_PER_MINUTE requests across two API processes, then 429 with Retry-After, and another key is unaffected', async () => {
    const ws = await newWorkspace(srv.url, 'rate');
    const other = await newWorkspace(srv.url, 'rate-other');
    const onSecond = client(secondUrl, ws.key);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await ws.api.get('/v1/settings')).status);
    // The ingest fast path counts too (a purchase posted as a till would).
    statuses.push((await onSecond.post('/v1/purchases', { orderId: 'r-1', customer: { externalId: 'c1' }, occurredAt: '2026-01-01T00:00:00Z', total: 1 })).status);
    statuses.push((await onSecond.get('/v1/settings')).status);
    expect(statuses).toEqual([200, 200, 200, 201, 200]);
    const limited = await onSecond.get('/v1/settings');
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe('rate_limited');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    const fast = await ws.api.post('/v1/purchases', { orderId: 'r-2', customer: { externalId: 'c1' }, occurredAt: '2026-01-01T00:00:00Z', total: 1 });
    expect(fast.status).toBe(429);
    expect(fast.headers.get('retry-after')).toBeTruthy();
    expect((await other.api.get('/v1/settings')).status).toBe(200);
  });
});

describe('authentication comes before the body', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer();
  });
  afterAll(async () => srv.close());

  test.each(['/v1/purchases', '/v1/segments', '/v1/workspaces'])('when %s gets a bad key and a body that is not JSON, then 401 (the body was not parsed)', async (path) => {
    const res = await client(srv.url, 'hark_adm_not-a-key').post(path, '{"this is": not json', { 'content-type': 'application/json' });
    expect(res.status).toBe(401);
  });

  test('when the key is good and the body is not JSON, then 400 as before', async () => {
    const ws = await newWorkspace(srv.url, 'parse');
    expect((await ws.api.post('/v1/purchases', '{"x": nope', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await ws.api.post('/v1/segments', '{"x": nope', { 'content-type': 'application/json' })).status).toBe(400);
  });
});

describe('statement timeout', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ env: { STATEMENT_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => srv.close());

  test('when a query waits past STATEMENT_TIMEOUT_MS (a row held by another transaction), then 503 query_timeout, not a hung request', async () => {
    const ws = await newWorkspace(srv.url, 'timeout');
    expect((await ws.api.put('/v1/customers/held', { firstName: 'Held' })).status).toBe(201);
    const holder = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM customers WHERE workspace_id = $1 AND external_id = $2 FOR UPDATE', [ws.id, 'held']);
      const t0 = Date.now();
      const res = await fetch(`${srv.url}/v1/customers/held`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ws.key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ firstName: 'Changed' }),
        signal: AbortSignal.timeout(8000),
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('query_timeout');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });
});
