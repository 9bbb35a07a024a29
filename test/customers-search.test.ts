import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

describe('GET /v1/customers', () => {
  test('when q is given, then it matches externalId/email/phone by prefix and names by case-insensitive substring, newest first', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/alpha-1', { email: 'zed@shop.com', firstName: 'Marianne', lastName: 'Oak' });
    await ws.api.put('/v1/customers/alpha-2', { email: 'ann@shop.com', firstName: 'Bob', lastName: "O'Connor" });
    await ws.api.put('/v1/customers/beta-1', { phone: '+15125550100', firstName: 'Ann', lastName: 'Lee' });
    await ws.api.put(`/v1/customers/${encodeURIComponent('50%off')}`, { firstName: 'Percy' });
    const ids = async (q: string) => (await ws.api.get(`/v1/customers?q=${encodeURIComponent(q)}`)).body.data.map((c: any) => c.externalId);
    expect(await ids('alpha')).toEqual(['alpha-2', 'alpha-1']); // newest first
    expect(await ids('ANN')).toEqual(['beta-1', 'alpha-2', 'alpha-1']); // first name Ann, email ann@, name MariANNe
    expect(await ids('ann@')).toEqual(['alpha-2']);
    expect(await ids('oak')).toEqual(['alpha-1']);
    expect(await ids('+1512555')).toEqual(['beta-1']);
    expect(await ids('1 512-555')).toEqual(['beta-1']);
    expect(await ids('lpha')).toEqual([]); // externalIds match by prefix only
    expect(await ids('50%')).toEqual(['50%off']); // a wildcard in q is literal
    expect(await ids('%')).toEqual([]); // not "anything"
    expect(await ids('_')).toEqual([]);
    const all = await ws.api.get('/v1/customers?limit=3');
    expect(all.body.data.map((c: any) => c.externalId)).toEqual(['50%off', 'beta-1', 'alpha-2']);
    expect(all.body.data[0].summary).toEqual({ purchaseCount: 0, totalSpent: 0, lastPurchaseAt: null, leadScore: 0, churnRisk: null });
    const next = await ws.api.get(`/v1/customers?limit=3&cursor=${all.body.nextCursor}`);
    expect(next.body).toMatchObject({ data: [{ externalId: 'alpha-1' }], nextCursor: null });
    expect((await ws.api.get('/v1/customers?cursor=garbage')).status).toBe(400);
  });

  test('when an ingest key or another workspace asks, then 403 or only its own customers', async () => {
    const a = await newWorkspace(srv.url);
    const b = await newWorkspace(srv.url);
    await a.api.put('/v1/customers/mine', { firstName: 'Ann' });
    const ingest = client(srv.url, (await a.api.post('/v1/api-keys', { name: 'till', scope: 'ingest' })).body.key);
    expect((await ingest.get('/v1/customers?q=mine')).status).toBe(403);
    expect((await ingest.get('/v1/customers/mine/timeline')).status).toBe(403);
    expect((await b.api.get('/v1/customers?q=mine')).body.data).toEqual([]);
    expect((await b.api.get('/v1/customers/mine/timeline')).status).toBe(404);
  });
});

describe('GET /v1/customers/:externalId/timeline', () => {
  test('when a customer bought, was refunded, did things, got messages and changed consent, then all of it newest first, paginated', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/t1', { email: 't1@x.com', emailConsent: 'subscribed' });
    const p = await ws.api.post('/v1/purchases', { orderId: 'o-1', customer: { externalId: 't1' }, occurredAt: '2024-01-01T10:00:00Z', total: 30, items: [{ sku: 'a', name: 'Tea', quantity: 2, unitPrice: 10 }, { sku: 'b', quantity: 1, unitPrice: 10 }] });
    expect(p.status).toBe(201);
    expect((await ws.api.post('/v1/purchases/o-1/refund', { amount: 5, refundId: 'r1' })).status).toBe(200);
    await ws.api.post('/v1/events', { customer: { externalId: 't1' }, type: 'store_visit', occurredAt: '2024-01-02T10:00:00Z', properties: { store: 'north' } });
    const customerId = (await ws.api.get('/v1/customers/t1')).body.id;
    await srv.deps.db('messages').insert({ workspace_id: ws.id, customer_id: customerId, channel: 'sms', status: 'skipped', skip_reason: 'no_address', created_at: new Date('2024-01-03T10:00:00Z') });
    await ws.api.put('/v1/customers/t1', { emailConsent: 'unsubscribed' });

    const res = await ws.api.get('/v1/customers/t1/timeline');
    expect(res.status).toBe(200);
    const types = res.body.data.map((e: any) => e.type);
    // Consent changes and the refund happened now; the rest carry their own times.
    expect(types.slice(-3)).toEqual(['message', 'event', 'purchase']);
    expect(types.filter((t: string) => t === 'consent')).toHaveLength(2);
    expect(res.body.data.find((e: any) => e.type === 'purchase')).toMatchObject({
      orderId: 'o-1', total: 30, refunded: 5, items: [{ sku: 'a', name: 'Tea', quantity: 2, unitPrice: 10 }, { sku: 'b', quantity: 1, unitPrice: 10 }],
    });
    expect(res.body.data.find((e: any) => e.type === 'refund')).toMatchObject({ orderId: 'o-1', amount: 5, refundId: 'r1' });
    expect(res.body.data.find((e: any) => e.type === 'event')).toMatchObject({ eventType: 'store_visit', properties: { store: 'north' } });
    expect(res.body.data.find((e: any) => e.type === 'message')).toMatchObject({ channel: 'sms', status: 'skipped', skipReason: 'no_address' });
    const consent = res.body.data.filter((e: any) => e.type === 'consent');
    expect(consent[0]).toMatchObject({ channel: 'email', value: 'unsubscribed', previous: 'subscribed' });
    expect(consent[1]).toMatchObject({ channel: 'email', value: 'subscribed', previous: null });
    const ats = res.body.data.map((e: any) => e.at);
    expect([...ats].sort().reverse()).toEqual(ats);

    // Page by page, the same entries in the same order, none twice.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: any = await ws.api.get(`/v1/customers/t1/timeline?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.data.map((e: any) => `${e.type}:${e.id}`));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(res.body.data.map((e: any) => `${e.type}:${e.id}`));
  });

  test('when consent is changed by an unsubscribe outside the customers API, then the timeline still shows it', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/t2', { phone: '+15125550111', smsConsent: 'subscribed' });
    // What an inbound STOP does (src/public/repo.ts setConsent): a plain UPDATE of the column.
    await srv.deps.db('customers').where({ workspace_id: ws.id, external_id: 't2' }).update({ sms_consent: 'unsubscribed', sms_consent_at: new Date() });
    const entries = (await ws.api.get('/v1/customers/t2/timeline')).body.data;
    expect(entries.map((e: any) => [e.type, e.channel, e.value])).toEqual([
      ['consent', 'sms', 'unsubscribed'],
      ['consent', 'sms', 'subscribed'],
    ]);
  });
});

describe('GET /v1/customers/:externalId/segments', () => {
  test('when a customer buys, then the segments they are in change at once', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/s1', { country: 'US' });
    const buyers = await ws.api.post('/v1/segments', { name: 'buyers', definition: { purchased: {} } });
    await ws.api.post('/v1/segments', { name: 'americans', definition: { field: 'country', op: 'eq', value: 'US' } });
    await ws.api.post('/v1/segments', { name: 'britons', definition: { field: 'country', op: 'eq', value: 'GB' } });
    expect((await ws.api.get('/v1/customers/s1/segments')).body).toEqual({ data: [{ id: expect.any(String), name: 'americans', kind: 'dynamic' }], count: 1 });
    await ws.api.post('/v1/purchases', { orderId: 's-1', customer: { externalId: 's1' }, occurredAt: new Date().toISOString(), total: 3 });
    const after = (await ws.api.get('/v1/customers/s1/segments')).body;
    expect(after.data.map((s: any) => s.name)).toEqual(['americans', 'buyers']);
    expect(after.data[1].id).toBe(buyers.body.id);
  });
});
