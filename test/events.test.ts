import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { workspaceCounts } from './helpers/foundation-counts';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const event = (extra: Record<string, unknown> = {}) => ({
  customer: { externalId: 'ev-1' }, type: 'page_view', channel: 'web', device: 'mobile', occurredAt: '2026-04-01T10:00:00Z', properties: { url: '/shoes' }, ...extra,
});

describe('POST /v1/events', () => {
  test('when an event is posted, then 201 and it is stored on the customer it names (created if new)', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.post('/v1/events', event());
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ id: expect.any(String), customerId: expect.any(String), duplicate: false });
    const row = await srv.deps.db('events').where({ id: res.body.id }).first();
    expect(row).toMatchObject({ workspace_id: ws.id, type: 'page_view', channel: 'web', device: 'mobile', properties: { url: '/shoes' } });
    expect((await ws.api.get('/v1/customers/ev-1')).body.id).toBe(res.body.customerId);
  });

  test('when an event with an eventId is replayed, then it is stored once', async () => {
    const ws = await newWorkspace(srv.url);
    const a = await ws.api.post('/v1/events', event({ eventId: 'e-1' }));
    const b = await ws.api.post('/v1/events', event({ eventId: 'e-1' }));
    expect(a.body.duplicate).toBe(false);
    expect(b.body.duplicate).toBe(true);
    expect((await workspaceCounts(srv.deps.db, ws.id)).events).toBe(1);
  });

  test.each([
    ['a missing type', { type: undefined }, 'type'],
    ['a type with spaces', { type: 'page view' }, 'type'],
    ['an unparseable time', { occurredAt: 'yesterday' }, 'occurredAt'],
    ['an unknown field', { colour: 'red' }, '(root)'],
    ['properties that are not an object', { properties: [1, 2] }, 'properties'],
    ['an unparseable phone', { customer: { phone: '++1' } }, 'customer.phone'],
    ['no customer', { customer: undefined }, 'customer'],
  ])('when an event has %s, then 400 names the path and nothing is written', async (_what, patch, path) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.post('/v1/events', event(patch));
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed' });
    expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });
});

describe('POST /v1/events/batch', () => {
  test('when a batch has a few bad rows, then the good ones are stored and the bad ones reported by index', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.post('/v1/events/batch', {
      events: [event(), event({ type: '' }), event({ customer: { email: 'Walker@x.com' }, type: 'store_visit' }), event({ customer: { phone: 'x' } }), event({ eventId: 'k' }), event({ eventId: 'k' })],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accepted: 3,
      duplicates: 1,
      errors: [
        { index: 1, error: expect.objectContaining({ code: 'validation_failed', details: expect.arrayContaining([expect.objectContaining({ path: 'type' })]) }) },
        { index: 3, error: expect.objectContaining({ code: 'validation_failed', details: [expect.objectContaining({ path: 'customer.phone' })] }) },
      ],
    });
    const types = await srv.deps.db('events').where({ workspace_id: ws.id }).orderBy('id').pluck('type');
    expect(types).toEqual(['page_view', 'store_visit', 'page_view']);
    expect(await srv.deps.db('customers').where({ workspace_id: ws.id, email: 'walker@x.com' }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });

  test('when a batch holds more than 1000 events, then 400 and nothing is written', async () => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.post('/v1/events/batch', { events: Array.from({ length: 1001 }, () => event()) });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: 'validation_failed', details: [expect.objectContaining({ path: 'events' })] });
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });
});
