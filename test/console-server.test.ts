import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { ensureConsoleBuilt } from './helpers/console-build';
import { ManualClock } from '../src/clock';

let srv: TestServer;
let dir: string;
const clock = new ManualClock(new Date('2026-03-10T15:00:00Z'));
beforeAll(async () => {
  dir = ensureConsoleBuilt();
  srv = await startTestServer({ clock });
});
afterAll(async () => {
  await srv.close();
});

describe('GET /app', () => {
  test('when the console is requested, then the page comes with a strict policy and is never cached', async () => {
    const res = await fetch(`${srv.url}/app`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    const directive = (name: string) => csp.split(';').map((d) => d.trim()).find((d) => d.startsWith(name + ' ')) ?? '';
    expect(directive('script-src')).toBe("script-src 'self'");
    expect(csp).not.toMatch(/unsafe-eval/);
    expect(directive('frame-ancestors')).toBe("frame-ancestors 'none'");
    expect(directive('default-src')).toBe("default-src 'none'");
    expect(directive('connect-src')).toBe("connect-src 'self'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const html = await res.text();
    expect(html).toBe(readFileSync(resolve(dir, 'index.html'), 'utf8'));
    // No inline script: every <script> has a src (the CSP would block an inline one anyway).
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => / src="\/app\/assets\//.test(tag))).toBe(true);
  });

  test('when the page names its script, then the script is served as JavaScript, cacheable for good, with the same policy', async () => {
    const html = await (await fetch(`${srv.url}/app/`)).text();
    const src = /<script[^>]* src="([^"]+)"/.exec(html)?.[1];
    expect(src).toMatch(/^\/app\/assets\/.+\.js$/);
    const js = await fetch(srv.url + src);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('cache-control')).toMatch(/immutable/);
    expect(js.headers.get('x-frame-options')).toBe('DENY');
  });

  test('when an asset that does not exist is asked for, then 404 in the API error shape', async () => {
    const res = await fetch(`${srv.url}/app/assets/nope-123.js`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
  });
});

describe('GET /v1/overview', () => {
  test('when purchases are made, then they are counted per day in the workspace time zone, this workspace only', async () => {
    const ws = await newWorkspace(srv.url, 'overview shop', { timezone: 'America/Chicago' });
    const other = await newWorkspace(srv.url, 'other shop');
    await ws.api.put('/v1/customers/o-1', { email: 'o1@example.com' });
    await ws.api.put('/v1/customers/o-2', { email: 'o2@example.com' });
    await other.api.put('/v1/customers/x-1', { email: 'x1@example.com' });
    // 2026-03-10 03:00Z is still 2026-03-09 in Chicago (UTC-5 after the DST change on 03-08).
    const buy = (api: typeof ws.api, orderId: string, occurredAt: string, total: number) =>
      api.post('/v1/purchases', { orderId, customer: { externalId: 'o-1' }, occurredAt, total });
    expect((await buy(ws.api, 'p1', '2026-03-10T03:00:00Z', 10)).status).toBe(201);
    expect((await buy(ws.api, 'p2', '2026-03-10T14:00:00Z', 20.5)).status).toBe(201);
    expect((await buy(ws.api, 'p3', '2026-03-10T14:30:00Z', 5)).status).toBe(201);
    expect((await buy(ws.api, 'p4', '2025-12-01T14:30:00Z', 5)).status).toBe(201);
    expect((await buy(other.api, 'p1', '2026-03-10T14:00:00Z', 99)).status).toBe(201);

    const res = await ws.api.get('/v1/overview');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ customers: 2, timezone: 'America/Chicago', automations: { enabled: 0, disabled: 0 } });
    const days = res.body.purchasesPerDay as Array<{ day: string; count: number; revenue: number }>;
    expect(days).toHaveLength(30);
    expect(days[29]).toEqual({ day: '2026-03-10', count: 2, revenue: 25.5 });
    expect(days[28]).toEqual({ day: '2026-03-09', count: 1, revenue: 10 });
    expect(days[0].day).toBe('2026-02-09');
    expect(days.reduce((s, d) => s + d.count, 0)).toBe(3);
  });

  test('when no key or an ingest key is used, then 401 and 403', async () => {
    const ws = await newWorkspace(srv.url);
    expect((await client(srv.url).get('/v1/overview')).status).toBe(401);
    const ingest = await ws.api.post('/v1/api-keys', { name: 'pos', scope: 'ingest' });
    expect((await client(srv.url, ingest.body.key).get('/v1/overview')).status).toBe(403);
  });
});
