import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';
import { workspaceCounts } from './helpers/foundation-counts';
import { createHash } from 'node:crypto';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const errorBody = (code: string) => ({ error: { code, message: expect.any(String), details: expect.any(Array) } });

describe('PUT /v1/customers/:externalId', () => {
  test('when a customer is put twice, then 201 then 200, email lower-cased, phone E.164, attributes merged', async () => {
    const ws = await newWorkspace(srv.url);
    const first = await ws.api.put('/v1/customers/c-1', {
      email: '  Ann.Lee@Example.COM ', phone: '+1 (512) 555-0100', firstName: 'Ann', timezone: 'America/Chicago', country: 'us',
      attributes: { tier: 'gold', visits: 3 },
    });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ externalId: 'c-1', email: 'ann.lee@example.com', phone: '+15125550100', country: 'US', timezone: 'America/Chicago' });
    expect(first.body.stats).toMatchObject({ purchaseCount: 0, totalSpent: 0 });
    const second = await ws.api.put('/v1/customers/c-1', { lastName: 'Lee', attributes: { visits: 4, vip: true } });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ firstName: 'Ann', lastName: 'Lee', email: 'ann.lee@example.com', attributes: { tier: 'gold', visits: 4, vip: true } });
    expect(second.body.id).toBe(first.body.id);
    const cleared = await ws.api.put('/v1/customers/c-1', { firstName: null });
    expect(cleared.body.firstName).toBeNull();
    expect(await srv.deps.db('customers').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });

  test('when a national phone number comes with a country, then it is normalised in that country', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.put('/v1/customers/uk-1', { phone: '020 7946 0958', country: 'GB' });
    expect(res.status).toBe(201);
    expect(res.body.phone).toBe('+442079460958');
  });

  test('when consent is put, then its timestamp moves only when the value changes', async () => {
    const ws = await newWorkspace(srv.url);
    const a = await ws.api.put('/v1/customers/k', { emailConsent: 'subscribed' });
    expect(a.body.emailConsent).toBe('subscribed');
    expect(a.body.emailConsentAt).toEqual(expect.any(String));
    expect(a.body.smsConsentAt).toBeNull();
    await new Promise((r) => setTimeout(r, 20));
    const b = await ws.api.put('/v1/customers/k', { emailConsent: 'subscribed', firstName: 'K' });
    expect(b.body.emailConsentAt).toBe(a.body.emailConsentAt);
    await new Promise((r) => setTimeout(r, 20));
    const c = await ws.api.put('/v1/customers/k', { emailConsent: 'unsubscribed' });
    expect(c.body.emailConsent).toBe('unsubscribed');
    expect(Date.parse(c.body.emailConsentAt)).toBeGreaterThan(Date.parse(a.body.emailConsentAt));
    const d = await ws.api.put('/v1/customers/k', { smsConsent: 'subscribed' });
    expect(d.body.emailConsentAt).toBe(c.body.emailConsentAt);
    expect(d.body.smsConsentAt).toEqual(expect.any(String));
  });

  test.each([
    ['an unparseable phone', { phone: '12' }, 'phone'],
    ['an unknown time zone', { timezone: 'Mars/Olympus' }, 'timezone'],
    ['an unknown field', { email: 'a@b.co', favouriteColour: 'red' }, '(root)'],
    ['a wrongly typed field', { firstName: 42 }, 'firstName'],
    ['a bad email', { email: 'not-an-email' }, 'email'],
    ['a bad consent', { emailConsent: 'yes' }, 'emailConsent'],
    ['a nested attribute object', { attributes: { a: { b: 1 } } }, 'attributes.a'],
  ])('when a customer is put with %s, then 400 names the path and nothing is written', async (_what, body, path) => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/x', { firstName: 'Before' });
    const before = await workspaceCounts(srv.deps.db, ws.id);
    for (const ext of ['x', 'y']) {
      const res = await ws.api.put(`/v1/customers/${ext}`, body);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(errorBody('validation_failed'));
      expect(res.body.error.details.map((d: { path: string }) => d.path)).toContain(path);
    }
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
    expect((await ws.api.get('/v1/customers/x')).body.firstName).toBe('Before');
  });
});

describe('POST /v1/customers/batch', () => {
  test('when a batch has a few bad rows, then the good ones are stored and the bad ones reported by index', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/b-0', { firstName: 'Old' });
    const res = await ws.api.post('/v1/customers/batch', {
      customers: [
        { externalId: 'b-0', firstName: 'New' },
        { externalId: 'b-1', email: 'B1@x.com' },
        { externalId: 'b-2', phone: 'nonsense' },
        { email: 'no-external-id@x.com' },
        { externalId: 'b-4', timezone: 'Nowhere/Land' },
        { externalId: 'b-5', phone: '+44 20 7946 0958' },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body.created).toBe(2);
    expect(res.body.updated).toBe(1);
    expect(res.body.errors.map((e: { index: number }) => e.index)).toEqual([2, 3, 4]);
    expect(res.body.errors[0].error).toMatchObject({ code: 'validation_failed', details: [{ path: 'phone' }] });
    expect(res.body.errors[1].error.details.map((d: { path: string }) => d.path)).toContain('externalId');
    expect(res.body.errors[2].error.details[0].path).toBe('timezone');
    expect((await ws.api.get('/v1/customers/b-0')).body.firstName).toBe('New');
    expect((await ws.api.get('/v1/customers/b-1')).body.email).toBe('b1@x.com');
    expect((await ws.api.get('/v1/customers/b-5')).body.phone).toBe('+442079460958');
    for (const missing of ['b-2', 'b-4']) expect((await ws.api.get(`/v1/customers/${missing}`)).status).toBe(404);
  });

  test('when a batch holds more than 1000 customers, then 400 and nothing is written', async () => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.post('/v1/customers/batch', { customers: Array.from({ length: 1001 }, (_, i) => ({ externalId: `c${i}` })) });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(errorBody('validation_failed'));
    expect(res.body.error.details[0].path).toBe('customers');
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });
});

describe('identity resolution', () => {
  test('when purchases name a customer by externalId, email or phone, then the existing one is found in that order, else one is created', async () => {
    const ws = await newWorkspace(srv.url);
    const known = (await ws.api.put('/v1/customers/id-1', { email: 'one@x.com', phone: '+15125550101' })).body;
    const other = (await ws.api.put('/v1/customers/id-2', { email: 'two@x.com', phone: '+15125550102' })).body;
    const buy = (orderId: string, customer: Record<string, string>) =>
      ws.api.post('/v1/purchases', { orderId, customer, occurredAt: '2026-01-01T10:00:00Z', total: 10 });
    // externalId wins over a conflicting email
    expect((await buy('o1', { externalId: 'id-1', email: 'two@x.com' })).body.customer.id).toBe(known.id);
    // email (any case) wins over a conflicting phone
    expect((await buy('o2', { email: 'ONE@x.com', phone: '+15125550102' })).body.customer.id).toBe(known.id);
    // phone when the email is unknown
    expect((await buy('o3', { email: 'unknown@x.com', phone: '+1 512 555 0102' })).body.customer.id).toBe(other.id);
    // nothing matches: a customer is created with the given addresses
    const fresh = await buy('o4', { email: 'New@x.com', phone: '+15125550199' });
    expect([known.id, other.id]).not.toContain(fresh.body.customer.id);
    const row = await srv.deps.db('customers').where({ id: fresh.body.customer.id }).first();
    expect(row).toMatchObject({ email: 'new@x.com', phone: '+15125550199', external_id: null });
    expect(await srv.deps.db('customer_stats').where({ customer_id: row.id }).first()).toMatchObject({ purchase_count: 1 });
    // a new externalId with the address of a customer that has another externalId is another person
    const third = await buy('o5', { externalId: 'id-3', email: 'one@x.com' });
    expect([known.id, other.id, fresh.body.customer.id]).not.toContain(third.body.customer.id);
  });

  test('when a customer created by a purchase (email only) is later put with an externalId, then it is the same customer', async () => {
    const ws = await newWorkspace(srv.url);
    const p = await ws.api.post('/v1/purchases', { orderId: 'a1', customer: { email: 'walkin@x.com' }, occurredAt: '2026-02-01T10:00:00Z', total: 25 });
    expect(p.status).toBe(201);
    const put = await ws.api.put('/v1/customers/crm-9', { email: 'WALKIN@x.com', firstName: 'Walk' });
    expect(put.status).toBe(200);
    expect(put.body.id).toBe(p.body.customer.id);
    expect(put.body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 25 });
    // and later purchases by externalId land on it too
    const q = await ws.api.post('/v1/purchases', { orderId: 'a2', customer: { externalId: 'crm-9' }, occurredAt: '2026-02-02T10:00:00Z', total: 5 });
    expect(q.body.customer.id).toBe(p.body.customer.id);
  });

  test('when 10 requests for the same new email arrive at once, then one customer is created', async () => {
    const ws = await newWorkspace(srv.url);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        ws.api.post('/v1/events', { customer: { email: 'rush@x.com' }, type: 'page_view', occurredAt: '2026-02-01T10:00:00Z', properties: { i } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(results.map((r) => r.body.customerId)).size).toBe(1);
    expect(await srv.deps.db('customers').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '1' }]);
  });
});

describe('erasure and export', () => {
  test('when a customer is exported, then everything held about them comes back as JSON', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/e-1', { email: 'exp@x.com', firstName: 'Ex', emailConsent: 'subscribed' });
    await ws.api.post('/v1/purchases', {
      orderId: 'ex-1', customer: { externalId: 'e-1' }, occurredAt: '2026-03-01T10:00:00Z', total: 30, items: [{ sku: 's1', category: 'shoes', quantity: 1, unitPrice: 30 }],
    });
    await ws.api.post('/v1/purchases/ex-1/refund', { amount: 5 });
    await ws.api.post('/v1/events', { customer: { externalId: 'e-1' }, type: 'store_visit', occurredAt: '2026-03-02T10:00:00Z', properties: { store: 'A' } });
    const res = await ws.api.get('/v1/customers/e-1/export');
    expect(res.status).toBe(200);
    expect(res.body.customer).toMatchObject({ externalId: 'e-1', email: 'exp@x.com', firstName: 'Ex', stats: { purchaseCount: 1, totalSpent: 25 } });
    expect(res.body.purchases).toEqual([expect.objectContaining({ orderId: 'ex-1', total: 30, refunded: 5, items: [expect.objectContaining({ sku: 's1', category: 'shoes' })] })]);
    expect(res.body.refunds).toEqual([expect.objectContaining({ orderId: 'ex-1', amount: 5 })]);
    expect(res.body.events).toEqual([expect.objectContaining({ type: 'store_visit', properties: { store: 'A' } })]);
    expect(res.body.suppressions).toEqual([]);
  });

  test('when a customer is erased, then 204, their data goes, a hashed suppression stays and a re-created customer is still suppressed', async () => {
    const ws = await newWorkspace(srv.url);
    const c = (await ws.api.put('/v1/customers/gone', { email: 'Gone@x.com', phone: '+15125550142', firstName: 'Gone' })).body;
    await ws.api.post('/v1/purchases', { orderId: 'g1', customer: { externalId: 'gone' }, occurredAt: '2026-03-01T10:00:00Z', total: 9, items: [{ sku: 'a', quantity: 1, unitPrice: 9 }] });
    await ws.api.post('/v1/events', { customer: { externalId: 'gone' }, type: 'page_view', occurredAt: '2026-03-01T10:00:00Z' });
    const del = await ws.api.delete('/v1/customers/gone');
    expect(del.status).toBe(204);
    expect(del.body).toBeNull();
    const db = srv.deps.db;
    for (const t of ['customers', 'customer_stats', 'purchases', 'purchase_items', 'events']) {
      const key = t === 'customers' ? 'id' : 'customer_id';
      expect(await db(t).where({ [key]: c.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
    }
    const suppressions = await db('suppressions').where({ workspace_id: ws.id }).orderBy('channel');
    expect(suppressions.map((s) => [s.channel, s.reason])).toEqual([['email', 'erased'], ['sms', 'erased']]);
    // A keyed hash (migration 0012), not the bare SHA-256 anyone can recompute.
    expect(suppressions[0].address_hash.equals(createHash('sha256').update('gone@x.com').digest())).toBe(false);
    expect(suppressions[0].address_hash.equals((await db.raw('SELECT hark_address_hash(?) AS h', ['gone@x.com'])).rows[0].h)).toBe(true);
    expect(JSON.stringify(await db('suppressions').where({ workspace_id: ws.id }))).not.toContain('gone@x.com');
    expect((await ws.api.get('/v1/customers/gone')).status).toBe(404);
    expect((await ws.api.delete('/v1/customers/gone')).status).toBe(404);

    const again = await ws.api.put('/v1/customers/back', { email: 'GONE@x.com' });
    expect(again.status).toBe(201);
    expect(again.body.suppressed).toEqual({ email: true, sms: false });
    expect((await ws.api.get('/v1/customers/back/export')).body.suppressions).toEqual([expect.objectContaining({ channel: 'email', reason: 'erased' })]);
  });
});

describe('tenancy and scopes', () => {
  test("when a key of another workspace names this workspace's customer, then 404, and nothing changes", async () => {
    const a = await newWorkspace(srv.url);
    const b = await newWorkspace(srv.url);
    await a.api.put('/v1/customers/shared-id', { email: 'a@x.com' });
    await a.api.post('/v1/purchases', { orderId: 'ord-a', customer: { externalId: 'shared-id' }, occurredAt: '2026-03-01T10:00:00Z', total: 50 });
    const before = await workspaceCounts(srv.deps.db, a.id);
    expect((await b.api.get('/v1/customers/shared-id')).status).toBe(404);
    expect((await b.api.get('/v1/customers/shared-id/export')).status).toBe(404);
    expect((await b.api.delete('/v1/customers/shared-id')).status).toBe(404);
    const refund = await b.api.post('/v1/purchases/ord-a/refund', { amount: 1 });
    expect(refund.status).toBe(404);
    expect(refund.body).toEqual(errorBody('not_found'));
    const keys = (await a.api.get('/v1/api-keys')).body.data;
    expect((await b.api.delete(`/v1/api-keys/${keys[0].id}`)).status).toBe(404);
    expect(await workspaceCounts(srv.deps.db, a.id)).toEqual(before);
    // the same externalId in b is b's own customer
    expect((await b.api.put('/v1/customers/shared-id', { email: 'b@x.com' })).status).toBe(201);
    expect((await a.api.get('/v1/customers/shared-id')).body.email).toBe('a@x.com');
  });

  test('when an ingest key calls each admin route, then 403 forbidden and nothing is written', async () => {
    const ws = await newWorkspace(srv.url);
    const ingest = client(srv.url, (await ws.api.post('/v1/api-keys', { name: 'pos', scope: 'ingest' })).body.key);
    await ws.api.put('/v1/customers/i1', { email: 'i1@x.com' });
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const calls = [
      ingest.get('/v1/customers/i1'),
      ingest.get('/v1/customers/i1/export'),
      ingest.delete('/v1/customers/i1'),
      ingest.get('/v1/settings'),
      ingest.patch('/v1/settings', { timezone: 'Europe/Paris' }),
      ingest.post('/v1/api-keys', { name: 'sneaky', scope: 'admin' }),
      ingest.get('/v1/api-keys'),
    ];
    for (const res of await Promise.all(calls)) {
      expect(res.status).toBe(403);
      expect(res.body).toEqual(errorBody('forbidden'));
    }
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
    expect((await client(srv.url).get('/v1/customers/i1')).status).toBe(401);
    expect((await client(srv.url, 'hark_adm_not-a-real-key').get('/v1/customers/i1')).status).toBe(401);
  });
});
