import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { OPERATOR_TOKEN } from './helpers/env';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

describe('workspaces and keys', () => {
  test('when the operator creates a workspace, then its admin key works and is stored hashed', async () => {
    const ws = await newWorkspace(srv.url);
    expect(ws.key).toMatch(/^hark_adm_/);
    const settings = await ws.api.get('/v1/settings');
    expect(settings.status).toBe(200);
    expect(settings.body.timezone).toBe('UTC');
    const stored = await srv.deps.db('api_keys').where({ workspace_id: ws.id });
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(ws.key);
  });

  test('when a workspace key calls the operator endpoint, then it is 401', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.post('/v1/workspaces', { name: 'x' });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('unauthorized');
  });

  test('when an ingest key calls an admin route, then it is 403 and an ingest route works', async () => {
    const ws = await newWorkspace(srv.url);
    const made = await ws.api.post('/v1/api-keys', { name: 'pos', scope: 'ingest' });
    expect(made.status).toBe(201);
    const ingest = client(srv.url, made.body.key);
    expect((await ingest.get('/v1/settings')).status).toBe(403);
    expect((await ingest.put('/v1/customers/c1', { email: 'A@Example.com' })).status).toBe(201);
    const listed = await ws.api.get('/v1/api-keys');
    expect(listed.body.data.map((k: any) => k.scope).sort()).toEqual(['admin', 'ingest']);
    expect((await ws.api.delete(`/v1/api-keys/${made.body.id}`)).status).toBe(204);
  });

  test('when settings are patched with bad values, then 400 names the path and nothing changes', async () => {
    const ws = await newWorkspace(srv.url);
    const bad = await ws.api.patch('/v1/settings', { quietHours: { start: '25:00', end: '08:00' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('quietHours.start');
    const good = await ws.api.patch('/v1/settings', { quietHours: { start: '21:00', end: '08:00' }, frequencyCap: { maxMessages: 3, perDays: 7 }, timezone: 'America/Chicago' });
    expect(good.status).toBe(200);
    expect((await ws.api.get('/v1/settings')).body).toMatchObject({ timezone: 'America/Chicago', quietHours: { start: '21:00', end: '08:00' } });
  });
});

describe('operations', () => {
  test('when probed, then health, readiness, metrics and the OpenAPI document answer', async () => {
    const api = client(srv.url);
    expect((await api.get('/healthz')).status).toBe(200);
    expect((await api.get('/readyz')).body).toEqual({ status: 'ok', postgres: 'ok', redis: 'ok' });
    const metrics = await api.get('/metrics');
    expect(metrics.body).toContain('hark_http_requests_total');
    const doc = await api.get('/openapi.json');
    expect(doc.body.openapi).toBe('3.1.0');
    expect(doc.body.paths['/v1/purchases'].post.requestBody).toBeDefined();
    expect((await api.get('/docs')).status).toBe(200);
  });

  test('when the operator token is wrong, then 401 with the error body', async () => {
    const res = await client(srv.url, OPERATOR_TOKEN + 'x').post('/v1/workspaces', { name: 'x' });
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: { code: 'unauthorized', message: expect.any(String), details: [] } });
  });
});
