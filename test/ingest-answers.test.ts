import { startTestServer, TestServer } from './helpers/server';
import { client, newWorkspace } from './helpers/api';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

/**
 * A stolen till key must not read profiles (issue 15, item 5): with an ingest key every write
 * answers the stored record's id and the customer's externalId, and batches their counts only.
 */
describe('writes with an ingest key', () => {
  test('when an ingest key writes, then each answer is {id, externalId} and never profile data', async () => {
    const ws = await newWorkspace(srv.url);
    const ingest = client(srv.url, (await ws.api.post('/v1/api-keys', { name: 'till', scope: 'ingest' })).body.key);
    const admin = await ws.api.put('/v1/customers/p1', { email: 'p1@x.com', firstName: 'Pat', phone: '+15125550100' });
    expect(admin.body.email).toBe('p1@x.com'); // an admin key still gets the profile

    const put = await ingest.put('/v1/customers/p1', {});
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ id: admin.body.id, externalId: 'p1' });
    const created = await ingest.put('/v1/customers/p2', { email: 'p2@x.com' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: expect.any(String), externalId: 'p2' });

    const purchase = { orderId: 'o-1', customer: { email: 'p1@x.com' }, occurredAt: '2024-01-01T10:00:00Z', total: 5, items: [{ sku: 's', quantity: 1, unitPrice: 5 }] };
    const first = await ingest.post('/v1/purchases', purchase);
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: expect.any(String), externalId: 'p1' });
    const replay = await ingest.post('/v1/purchases', purchase);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual({ id: first.body.id, externalId: 'p1' });
    // The same request through express (a query string takes it off the fast path) answers the same.
    const viaExpress = await ingest.post('/v1/purchases?x=1', purchase);
    expect(viaExpress.body).toEqual({ id: first.body.id, externalId: 'p1' });

    const refund = await ingest.post('/v1/purchases/o-1/refund', { amount: 1, refundId: 'r1' });
    expect(refund.status).toBe(200);
    expect(refund.body).toEqual({ id: first.body.id, externalId: 'p1' });

    const event = await ingest.post('/v1/events', { customer: { phone: '+15125550100' }, type: 'store_visit', occurredAt: '2024-01-01T10:00:00Z' });
    expect(event.status).toBe(201);
    expect(event.body).toEqual({ id: expect.any(String), externalId: 'p1' });

    const batch = await ingest.post('/v1/customers/batch', { customers: [{ externalId: 'p3' }, { externalId: 'p1' }] });
    expect(batch.body).toEqual({ created: 1, updated: 1, errors: [] });
  });
});
