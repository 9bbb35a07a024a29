import { ManualClock } from '../src/clock';
import { rollRecentStats } from '../src/stats/roll';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';

const clock = new ManualClock(new Date('2026-06-01T00:00:00Z'));
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ clock });
});
afterAll(async () => {
  await srv.close();
});

const buy = (orderId: string, occurredAt: string, total: number, items: Array<[string, number, number]>, externalId = 's-1') => ({
  orderId, customer: { externalId }, occurredAt, total, items: items.map(([category, quantity, unitPrice], k) => ({ sku: `${orderId}-${k}`, category, quantity, unitPrice })),
});

describe('customer stats, kept incrementally', () => {
  test('when purchases arrive out of order and are refunded, then every stat is right, and the 90-day figures re-base as time passes', async () => {
    clock.set('2026-06-01T00:00:00Z');
    const ws = await newWorkspace(srv.url);
    const post = (b: unknown) => ws.api.post('/v1/purchases', b);
    expect((await post(buy('p1', '2026-05-01T00:00:00Z', 100, [['shoes', 2, 30], ['bags', 1, 40]]))).status).toBe(201);
    // earlier than the first one, and just outside the 90-day window (which starts 2026-03-03)
    expect((await post(buy('p2', '2026-03-02T00:00:00Z', 50, [['bags', 1, 50]]))).status).toBe(201);
    let s = (await ws.api.get('/v1/customers/s-1')).body.stats;
    expect(s).toMatchObject({ purchaseCount: 2, totalSpent: 150, topCategory: 'bags', firstPurchaseAt: '2026-03-02T00:00:00.000Z', lastPurchaseAt: '2026-05-01T00:00:00.000Z', purchases90d: 1, spent90d: 100 });
    expect((await post(buy('p3', '2026-05-21T00:00:00Z', 45, [['shoes', 1, 45]]))).status).toBe(201);
    expect((await post(buy('p0', '2025-12-01T00:00:00Z', 20, []))).status).toBe(201);
    s = (await ws.api.get('/v1/customers/s-1')).body.stats;
    expect(s).toMatchObject({
      purchaseCount: 4,
      totalSpent: 215,
      avgOrderValue: 53.75,
      firstPurchaseAt: '2025-12-01T00:00:00.000Z',
      lastPurchaseAt: '2026-05-21T00:00:00.000Z',
      daysSinceLastPurchase: 11,
      avgDaysBetweenPurchases: 57, // 171 days over 3 gaps
      expectedNextPurchaseAt: '2026-07-17T00:00:00.000Z',
      purchases90d: 2,
      spent90d: 145,
      topCategory: 'shoes', // 105 against bags' 90
    });

    // a refund inside the window lowers the total, the average and the 90-day spend
    expect((await ws.api.post('/v1/purchases/p1/refund', { amount: 40 })).status).toBe(200);
    // one outside the window lowers the total only
    expect((await ws.api.post('/v1/purchases/p0/refund', { amount: 5 })).status).toBe(200);
    s = (await ws.api.get('/v1/customers/s-1')).body.stats;
    expect(s).toMatchObject({ purchaseCount: 4, totalSpent: 170, avgOrderValue: 42.5, purchases90d: 2, spent90d: 105 });

    // two months on, p1 has left the window; the hourly re-base brings the figures down
    clock.set('2026-08-01T00:00:00Z');
    expect(await rollRecentStats(srv.deps.db, clock.now(), ws.id)).toBe(1);
    s = (await ws.api.get('/v1/customers/s-1')).body.stats;
    expect(s).toMatchObject({ purchaseCount: 4, totalSpent: 170, purchases90d: 1, spent90d: 45, daysSinceLastPurchase: 72 });
    // running it again changes nothing
    expect(await rollRecentStats(srv.deps.db, clock.now(), ws.id)).toBe(0);
    clock.set('2026-09-01T00:00:00Z');
    await rollRecentStats(srv.deps.db, clock.now(), ws.id);
    expect((await ws.api.get('/v1/customers/s-1')).body.stats).toMatchObject({ purchases90d: 0, spent90d: 0, totalSpent: 170 });
  });

  test('when one batch holds several purchases of the same customers in any order, then their stats equal those of one-by-one posting', async () => {
    clock.set('2026-06-01T00:00:00Z');
    const rows = [
      buy('b1', '2026-05-10T00:00:00Z', 10, [['tea', 1, 10]], 'x'),
      buy('b2', '2026-01-10T00:00:00Z', 20, [['coffee', 2, 10]], 'y'),
      buy('b3', '2026-04-10T00:00:00Z', 30, [['coffee', 3, 10]], 'x'),
      buy('b4', '2026-05-30T00:00:00Z', 5, [['tea', 1, 5]], 'y'),
      buy('b5', '2026-02-10T00:00:00Z', 7, [], 'x'),
    ];
    const batch = await newWorkspace(srv.url);
    expect((await batch.api.post('/v1/purchases/batch', { purchases: rows })).body).toEqual({ accepted: 5, duplicates: 0, errors: [] });
    const single = await newWorkspace(srv.url);
    for (const r of rows) expect((await single.api.post('/v1/purchases', r)).status).toBe(201);
    for (const ext of ['x', 'y']) {
      const a = (await batch.api.get(`/v1/customers/${ext}`)).body.stats;
      const b = (await single.api.get(`/v1/customers/${ext}`)).body.stats;
      expect(a).toEqual(b);
    }
    expect((await batch.api.get('/v1/customers/x')).body.stats).toMatchObject({ purchaseCount: 3, totalSpent: 47, topCategory: 'coffee', purchases90d: 2, spent90d: 40, avgDaysBetweenPurchases: 44.5 });
  });

  test('when known customers post concurrent single purchases (stored in groups), then their stats and category maps equal the batch path\'s', async () => {
    clock.set('2026-06-01T00:00:00Z');
    const rows = [
      buy('k1', '2026-05-10T00:00:00Z', 0.3, [['B', 3, 0.1]], 'kx'),
      buy('k2', '2026-05-11T00:00:00Z', 0.3, [['a', 1, 0.2], ['a', 1, 0.1]], 'kx'),
      buy('k3', '2026-01-10T00:00:00Z', 12.5, [['z', 1, 12.5]], 'ky'),
      buy('k4', '2026-05-30T00:00:00Z', 12.5, [['é', 5, 2.5]], 'ky'),
      buy('k5', '2026-02-10T00:00:00Z', 7, [], 'kx'),
      buy('k6', '2026-05-31T00:00:00Z', 99.99, [['tea', 1, 99.99]], 'kz'),
      buy('k7', '2026-05-31T00:00:00Z', 0.01, [['tea', 1, 0.01], ['coffee', 1, 0]], 'kz'),
    ];
    const batch = await newWorkspace(srv.url);
    const single = await newWorkspace(srv.url);
    for (const ws of [batch, single]) for (const ext of ['kx', 'ky', 'kz']) expect((await ws.api.put(`/v1/customers/${ext}`, { firstName: 'K' })).status).toBe(201);
    expect((await batch.api.post('/v1/purchases/batch', { purchases: rows })).body).toEqual({ accepted: 7, duplicates: 0, errors: [] });
    expect((await Promise.all(rows.map((r) => single.api.post('/v1/purchases', r)))).map((r) => r.status)).toEqual(Array(7).fill(201));
    const raw = async (wsId: string) =>
      (await srv.deps.db('customer_stats as s').join('customers as c', 'c.id', 's.customer_id').where('s.workspace_id', wsId).orderBy('c.external_id').select('c.external_id', 's.category_spend', 's.top_category'))
        .map((r) => ({ ext: r.external_id, top: r.top_category, cats: Object.fromEntries(Object.entries(r.category_spend as Record<string, unknown>).map(([k, v]) => [k, Number(v)])) }));
    expect(await raw(single.id)).toEqual(await raw(batch.id));
    for (const ext of ['kx', 'ky', 'kz']) expect((await single.api.get(`/v1/customers/${ext}`)).body.stats).toEqual((await batch.api.get(`/v1/customers/${ext}`)).body.stats);
    // ties go to the first category in code-point order: B before a, z before é
    expect((await raw(single.id)).map((r) => r.top)).toEqual(['B', 'z', 'tea']);
    expect((await single.api.get('/v1/customers/kx')).body.stats).toMatchObject({ purchaseCount: 3, totalSpent: 7.6, purchases90d: 2, spent90d: 0.6, topCategory: 'B' });
  });

  test('when a customer has one purchase, then the rhythm figures are null rather than invented', async () => {
    clock.set('2026-06-01T00:00:00Z');
    const ws = await newWorkspace(srv.url);
    await ws.api.post('/v1/purchases', buy('only', '2026-05-31T12:00:00Z', 9.99, []));
    expect((await ws.api.get('/v1/customers/s-1')).body.stats).toMatchObject({
      purchaseCount: 1, avgOrderValue: 9.99, avgDaysBetweenPurchases: null, expectedNextPurchaseAt: null, daysSinceLastPurchase: 0, topCategory: null,
    });
  });
});

describe('rolling re-base', () => {
  test('when a purchase was dated in the future when posted, then the re-base counts it once it is in the window', async () => {
    clock.set('2026-06-01T00:00:00Z');
    const ws = await newWorkspace(srv.url);
    await ws.api.post('/v1/purchases', buy('future', '2026-06-03T00:00:00Z', 12, []));
    expect((await ws.api.get('/v1/customers/s-1')).body.stats).toMatchObject({ purchaseCount: 1, purchases90d: 0, spent90d: 0 });
    clock.set('2026-06-04T00:00:00Z');
    await rollRecentStats(srv.deps.db, clock.now(), ws.id);
    expect((await ws.api.get('/v1/customers/s-1')).body.stats).toMatchObject({ purchases90d: 1, spent90d: 12 });
  });
});
