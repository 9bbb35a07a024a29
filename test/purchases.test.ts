import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { workspaceCounts } from './helpers/foundation-counts';
import { ingestPurchases } from '../src/purchases/service';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const errorBody = (code: string) => ({ error: { code, message: expect.any(String), details: expect.any(Array) } });
const paths = (body: any) => body.error.details.map((d: { path: string }) => d.path);
const purchase = (orderId: string, extra: Record<string, unknown> = {}) => ({
  orderId, customer: { externalId: 'p-1' }, occurredAt: '2026-04-01T12:00:00+02:00', total: 42.5, currency: 'USD', storeId: 's1', channel: 'pos',
  items: [{ sku: 'A', name: 'Boot', category: 'shoes', brand: 'B', quantity: 1, unitPrice: 40 }, { sku: 'C', category: 'care', quantity: 1, unitPrice: 2.5 }],
  ...extra,
});

describe('POST /v1/purchases', () => {
  test('when a purchase is posted, then 201 with the stored purchase, and a replay is 200 and counted once', async () => {
    const ws = await newWorkspace(srv.url);
    const first = await ws.api.post('/v1/purchases', purchase('o-1'));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ orderId: 'o-1', total: 42.5, refunded: 0, currency: 'USD', occurredAt: '2026-04-01T10:00:00.000Z', items: [{ sku: 'A', unitPrice: 40 }, { sku: 'C' }] });
    const replay = await ws.api.post('/v1/purchases', purchase('o-1', { total: 99 }));
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(first.body.id);
    expect(replay.body.total).toBe(42.5);
    const c = await ws.api.get('/v1/customers/p-1');
    expect(c.body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 42.5 });
  });

  test('when purchases are created, then each 201 answer equals what a replay reads back from the database', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/known-1', { email: 'known@x.com' });
    const bodies = [
      purchase('eq-1', { occurredAt: '2026-04-01T12:00:00.123456+05:30', total: 19.99, items: [{ sku: 'A', quantity: 3, unitPrice: 0.1 }, { sku: 'B', name: 'b', category: 'c', brand: 'd', quantity: 1, unitPrice: 19.69 }] }),
      purchase('eq-2', { customer: { email: ' Known@X.com ' }, currency: undefined, storeId: undefined, channel: undefined, items: undefined }),
      purchase('eq-3', { customer: { phone: '+44 20 7946 0958' }, total: 1e11, items: [] }),
      ...Array.from({ length: 6 }, (_, i) => purchase(`eq-g${i}`, { customer: { externalId: `eq-c${i % 3}` }, total: 5 + i / 100 })),
    ];
    const created = await Promise.all(bodies.map((b) => ws.api.post('/v1/purchases', b)));
    expect(created.map((r) => r.status)).toEqual(Array(bodies.length).fill(201));
    expect(created[1]!.body.customer.externalId).toBe('known-1');
    expect(created[2]!.body.customer.externalId).toBeNull();
    for (const [i, b] of bodies.entries()) {
      const replay = await ws.api.post('/v1/purchases', b);
      expect(replay.status).toBe(200);
      expect(created[i]!.body).toEqual(replay.body);
    }
  });

  test('when texts hold quotes, backslashes, braces, commas, spaces or the word NULL, then single and batch paths store them as given', async () => {
    const ws = await newWorkspace(srv.url);
    const odd = ['a"b', 'back\\slash\\', '{x,y}', 'NULL', '', ' lead and trail ', 'é ✓ 日本'];
    const items = odd.map((t, k) => ({ sku: t || 'empty', name: t, category: t, brand: t, quantity: k + 1, unitPrice: 1.5 }));
    const total = items.reduce((a, x) => a + x.quantity * x.unitPrice, 0);
    const one = await ws.api.post('/v1/purchases', purchase('odd"1\\', { customer: { externalId: 'odd "ext" \\' }, storeId: 'NULL', items, total }));
    expect(one.status).toBe(201);
    const again = await ws.api.post('/v1/purchases', purchase('odd-2', { customer: { externalId: 'odd "ext" \\' }, storeId: '{}', items, total }));
    expect(again.status).toBe(201);
    expect((await ws.api.post('/v1/purchases/batch', { purchases: [purchase('odd-3', { customer: { externalId: 'odd "ext" \\' }, items, total })] })).body).toMatchObject({ accepted: 1 });
    for (const [orderId, storeId] of [['odd"1\\', 'NULL'], ['odd-2', '{}'], ['odd-3', 's1']] as const) {
      const r = await ws.api.post('/v1/purchases', purchase(orderId, { customer: { externalId: 'odd "ext" \\' } }));
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ orderId, storeId, customer: { externalId: 'odd "ext" \\' } });
      expect(r.body.items.map((x: { name: string; category: string; brand: string }) => [x.name, x.category, x.brand])).toEqual(odd.map((t) => [t, t, t]));
    }
    expect((await ws.api.get(`/v1/customers/${encodeURIComponent('odd "ext" \\')}`)).body.stats).toMatchObject({ purchaseCount: 3 });
  });

  test('when one call stores an address-only purchase and one that gives that customer an externalId, then both answers name it', async () => {
    const ws = await newWorkspace(srv.url);
    const first = await ws.api.post('/v1/purchases', purchase('claim-0', { customer: { email: 'anon@x.com' } }));
    expect(first.body.customer.externalId).toBeNull();
    const rows = [purchase('claim-1', { customer: { email: 'anon@x.com' } }), purchase('claim-2', { customer: { externalId: 'claimer', email: 'anon@x.com' } })] as any[];
    const { outcomes } = await ingestPurchases(srv.deps.db, ws.id, rows, new Date());
    expect(outcomes.map((o) => o.stored?.externalId)).toEqual(['claimer', 'claimer']);
    expect(new Set(outcomes.map((o) => o.customerId))).toEqual(new Set([first.body.customer.id]));
    const replay = await ws.api.post('/v1/purchases', rows[0]);
    expect(replay.body.customer).toEqual({ id: first.body.customer.id, externalId: 'claimer' });
  });

  test('when the same orderId is posted 20 times at once, then it is stored and counted once', async () => {
    const ws = await newWorkspace(srv.url);
    const results = await Promise.all(Array.from({ length: 20 }, () => ws.api.post('/v1/purchases', purchase('dup-1', { customer: { email: 'Race@x.com' } }))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const counts = await workspaceCounts(srv.deps.db, ws.id);
    expect(counts).toMatchObject({ customers: 1, purchases: 1, purchase_items: 2 });
    const stats = await srv.deps.db('customer_stats').where({ workspace_id: ws.id }).first();
    expect(stats).toMatchObject({ purchase_count: 1, total_spent: '42.50' });
  });

  test('when the same orderId of a known customer is posted 20 times at once, with 40 other purchases, then it is stored and counted once', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.put('/v1/customers/known-race', { firstName: 'K' });
    const results = await Promise.all([
      ...Array.from({ length: 20 }, () => ws.api.post('/v1/purchases', purchase('dup-k', { customer: { externalId: 'known-race' } }))),
      ...Array.from({ length: 40 }, (_, i) => ws.api.post('/v1/purchases', purchase(`other-${i}`, { customer: { externalId: 'known-race' }, total: 1, items: [] }))),
    ]);
    const dup = results.slice(0, 20);
    expect(dup.filter((r) => r.status === 201)).toHaveLength(1);
    expect(dup.filter((r) => r.status === 200)).toHaveLength(19);
    expect(new Set(dup.map((r) => r.body.id)).size).toBe(1);
    expect(results.slice(20).map((r) => r.status)).toEqual(Array(40).fill(201));
    expect(await workspaceCounts(srv.deps.db, ws.id)).toMatchObject({ customers: 1, purchases: 41, purchase_items: 2 });
    expect((await ws.api.get('/v1/customers/known-race')).body.stats).toMatchObject({ purchaseCount: 41, totalSpent: 82.5, topCategory: 'shoes' });
  });

  test.each([
    ['a negative quantity', { items: [{ sku: 'A', quantity: -1, unitPrice: 1 }] }, 'items.0.quantity'],
    ['a zero quantity', { items: [{ sku: 'A', quantity: 0, unitPrice: 1 }] }, 'items.0.quantity'],
    ['a negative unit price', { items: [{ sku: 'A', quantity: 1, unitPrice: -0.01 }] }, 'items.0.unitPrice'],
    ['a negative total', { total: -5 }, 'total'],
    ['a total with fractions of a cent', { total: 1.001 }, 'total'],
    ['a total as a string', { total: '12.00' }, 'total'],
    ['an unknown field', { coupon: 'X' }, '(root)'],
    ['an unknown item field', { items: [{ sku: 'A', quantity: 1, unitPrice: 1, colour: 'red' }] }, 'items.0'],
    ['a date without offset', { occurredAt: '2026-04-01 10:00' }, 'occurredAt'],
    ['an unknown channel', { channel: 'fax' }, 'channel'],
    ['a customer with no identifier', { customer: {} }, 'customer'],
    ['an unparseable phone', { customer: { phone: 'call me' } }, 'customer.phone'],
    ['a missing orderId', { orderId: undefined }, 'orderId'],
  ])('when a purchase has %s, then 400 names the path and nothing is written', async (_what, patch, path) => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.post('/v1/purchases', purchase('bad-1', patch));
    expect(res.status).toBe(400);
    expect(res.body).toEqual(errorBody('validation_failed'));
    expect(paths(res.body)).toContain(path);
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });
});

describe('POST /v1/purchases/batch', () => {
  test('when a batch has a few bad rows and a duplicate, then the good ones are stored and the bad ones reported by index', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.post('/v1/purchases', purchase('known'));
    const res = await ws.api.post('/v1/purchases/batch', {
      purchases: [
        purchase('b-1'),
        purchase('b-2', { items: [{ sku: 'x', quantity: -2, unitPrice: 3 }] }),
        purchase('known'),
        purchase('b-3', { customer: { phone: '123' } }),
        purchase('b-4', { customer: { email: 'new@x.com' } }),
        'not an object',
        purchase('b-1'),
      ],
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      accepted: 2,
      duplicates: 2,
      errors: [
        { index: 1, error: expect.objectContaining({ code: 'validation_failed', details: [expect.objectContaining({ path: 'items.0.quantity' })] }) },
        { index: 3, error: expect.objectContaining({ code: 'validation_failed', details: [expect.objectContaining({ path: 'customer.phone' })] }) },
        { index: 5, error: expect.objectContaining({ code: 'validation_failed' }) },
      ],
    });
    const orders = await srv.deps.db('purchases').where({ workspace_id: ws.id }).orderBy('order_id').pluck('order_id');
    expect(orders).toEqual(['b-1', 'b-4', 'known']);
    expect((await ws.api.get('/v1/customers/p-1')).body.stats).toMatchObject({ purchaseCount: 2, totalSpent: 85 });
  });

  test('when a batch holds more than 1000 purchases, then 400 and nothing is written', async () => {
    const ws = await newWorkspace(srv.url);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const res = await ws.api.post('/v1/purchases/batch', { purchases: Array.from({ length: 1001 }, (_, i) => purchase(`o${i}`)) });
    expect(res.status).toBe(400);
    expect(res.body).toEqual(errorBody('validation_failed'));
    expect(paths(res.body)).toEqual(['purchases']);
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
  });

  test('when a batch holds exactly 1000 purchases, then all are stored', async () => {
    const ws = await newWorkspace(srv.url);
    const res = await ws.api.post('/v1/purchases/batch', { purchases: Array.from({ length: 1000 }, (_, i) => purchase(`o${i}`, { customer: { externalId: `c${i % 100}` } })) });
    expect(res.body).toEqual({ accepted: 1000, duplicates: 0, errors: [] });
    const stats = await srv.deps.db('customer_stats').where({ workspace_id: ws.id }).select('purchase_count');
    expect(stats).toHaveLength(100);
    expect(stats.every((s) => s.purchase_count === 10)).toBe(true);
  });
});

describe('POST /v1/purchases/:orderId/refund', () => {
  test('when refunds exceed what was paid, then 422 and nothing changes; a named refund applies once', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.post('/v1/purchases', purchase('r-1', { total: 100 }));
    expect((await ws.api.post('/v1/purchases/r-1/refund', { amount: 60, refundId: 'rf-1' })).body).toMatchObject({ refunded: 60 });
    expect((await ws.api.post('/v1/purchases/r-1/refund', { amount: 60, refundId: 'rf-1' })).body).toMatchObject({ refunded: 60, replayed: true });
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const statsBefore = (await ws.api.get('/v1/customers/p-1')).body.stats;
    const over = await ws.api.post('/v1/purchases/r-1/refund', { amount: 40.01 });
    expect(over.status).toBe(422);
    expect(over.body).toEqual(errorBody('unprocessable'));
    expect(paths(over.body)).toEqual(['amount']);
    for (const [body, path] of [[{ amount: -1 }, 'amount'], [{ amount: 0 }, 'amount'], [{ amount: '5' }, 'amount'], [{ amount: 1, why: 'x' }, '(root)']] as const) {
      const bad = await ws.api.post('/v1/purchases/r-1/refund', body);
      expect(bad.status).toBe(400);
      expect(paths(bad.body)).toContain(path);
    }
    expect((await ws.api.post('/v1/purchases/nope/refund', { amount: 1 })).status).toBe(404);
    expect(await workspaceCounts(srv.deps.db, ws.id)).toEqual(before);
    expect((await ws.api.get('/v1/customers/p-1')).body.stats).toEqual(statsBefore);
    expect((await ws.api.post('/v1/purchases/r-1/refund', { amount: 40 })).body).toMatchObject({ refunded: 100 });
  });

  test('when 10 named refunds of 20 race on a purchase of 100, then exactly 5 succeed', async () => {
    const ws = await newWorkspace(srv.url);
    await ws.api.post('/v1/purchases', purchase('r-2', { total: 100 }));
    // Named: ten unnamed refunds of one amount at once would be one refund and its retries.
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => ws.api.post('/v1/purchases/r-2/refund', { amount: 20, refundId: `race-${i}` })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(5);
    expect(results.filter((r) => r.status === 422)).toHaveLength(5);
    expect((await ws.api.get('/v1/customers/p-1')).body.stats.totalSpent).toBe(0);
  });
});

describe('concurrent single purchases (stored in groups)', () => {
  test('when 40 purchases of 8 customers arrive at once, then each is stored once with the right answer, and stats add up', async () => {
    const ws = await newWorkspace(srv.url);
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => ws.api.post('/v1/purchases', purchase(`g-${i}`, { customer: { externalId: `gc-${i % 8}` }, total: 10 + i, items: [] }))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(40).fill(201));
    results.forEach((r, i) => expect(r.body).toMatchObject({ orderId: `g-${i}`, total: 10 + i, customer: { externalId: `gc-${i % 8}` } }));
    for (let c = 0; c < 8; c++) {
      const stats = (await ws.api.get(`/v1/customers/gc-${c}`)).body.stats;
      const mine = Array.from({ length: 5 }, (_, k) => 10 + c + 8 * k);
      expect(stats).toMatchObject({ purchaseCount: 5, totalSpent: mine.reduce((a, b) => a + b, 0) });
    }
  });

  test("when one of many concurrent purchases fails in the database, then only that one fails (422) and the others are stored", async () => {
    const ws = await newWorkspace(srv.url);
    // Nine purchases at the per-value maximum put this customer's lifetime spend near its column's limit.
    for (let i = 0; i < 9; i++) expect((await ws.api.post('/v1/purchases', purchase(`big-${i}`, { customer: { externalId: 'whale' }, total: 1e11, items: [] }))).status).toBe(201);
    const before = await workspaceCounts(srv.deps.db, ws.id);
    const results = await Promise.all([
      ws.api.post('/v1/purchases', purchase('big-overflow', { customer: { externalId: 'whale' }, total: 1e11, items: [] })),
      ...Array.from({ length: 10 }, (_, i) => ws.api.post('/v1/purchases', purchase(`small-${i}`, { customer: { externalId: `minnow-${i}` }, items: [] }))),
    ]);
    expect(results[0]!.status).toBe(422);
    expect(results[0]!.body).toEqual(errorBody('unprocessable'));
    expect(results.slice(1).map((r) => r.status)).toEqual(Array(10).fill(201));
    const after = await workspaceCounts(srv.deps.db, ws.id);
    expect(after).toMatchObject({ purchases: (before.purchases as number) + 10, customers: (before.customers as number) + 10 });
    expect((await ws.api.get('/v1/customers/whale')).body.stats).toMatchObject({ purchaseCount: 9, totalSpent: 9e11 });
  });
});

describe('purchase items follow their purchase (a trigger, not a per-row foreign key)', () => {
  test('when a workspace is deleted, or purchases are deleted in one statement, then their items go with them and others stay', async () => {
    const db = srv.deps.db;
    const [gone, kept] = [await newWorkspace(srv.url), await newWorkspace(srv.url)];
    for (const ws of [gone, kept]) {
      const res = await ws.api.post('/v1/purchases/batch', { purchases: [purchase('t-1'), purchase('t-2'), purchase('t-3')] });
      expect(res.body).toMatchObject({ accepted: 3 });
    }
    const items = async (ws: { id: string }) => Number((await db('purchase_items').where({ workspace_id: ws.id }).count({ n: '*' }))[0]!.n);
    expect(await items(gone)).toBe(6);
    await db('purchases').where({ workspace_id: kept.id }).whereIn('order_id', ['t-1', 't-2']).delete();
    expect(await items(kept)).toBe(2);
    await db('workspaces').where({ id: gone.id }).delete();
    expect(await items(gone)).toBe(0);
    expect(await items(kept)).toBe(2);
  });
});

describe('no purchase outlives its customer', () => {
  test('when customers are erased while purchases for them are being stored, then no purchase or item is left without its customer', async () => {
    const ws = await newWorkspace(srv.url);
    const db = srv.deps.db;
    for (let i = 0; i < 8; i++) await ws.api.put(`/v1/customers/race-${i}`, { firstName: 'R' });
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => [
        ws.api.post('/v1/purchases', purchase(`race-o-${i}`, { customer: { externalId: `race-${i}` } })),
        ws.api.post('/v1/purchases/batch', { purchases: [purchase(`race-b-${i}`, { customer: { externalId: `race-${i}` } })] }),
        ws.api.delete(`/v1/customers/race-${i}`),
      ]).flat(),
    );
    const orphans = await db.raw(
      `SELECT (SELECT count(*) FROM purchases p WHERE p.workspace_id = ? AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = p.customer_id)) AS purchases,
              (SELECT count(*) FROM purchase_items i WHERE i.workspace_id = ? AND NOT EXISTS (SELECT 1 FROM purchases p WHERE p.id = i.purchase_id)) AS items`,
      [ws.id, ws.id],
    );
    expect(orphans.rows[0]).toEqual({ purchases: '0', items: '0' });
    // A purchase that came after its customer's erasure made a new customer, with its stats.
    const stored = await db('purchases').where({ workspace_id: ws.id }).count({ n: '*' });
    const stats = await db('customer_stats').where({ workspace_id: ws.id }).sum({ n: 'purchase_count' });
    expect(Number(stats[0]!.n ?? 0)).toBe(Number(stored[0]!.n));
  });
});
