import { ManualClock } from '../src/clock';
import { client, newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Segments end to end on hand-built data with known answers: every preset, time-window edges,
 * customers without purchases, static lists, snapshot, explain, and the bad-input contract.
 */
const NOW = new Date('2026-06-01T12:00:00Z');
const DAY = 86400000;
const ago = (days: number, hours = 0) => new Date(NOW.getTime() - days * DAY - hours * 3600000).toISOString();

let srv: TestServer;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
let other: Awaited<ReturnType<typeof newWorkspace>>;
const clock = new ManualClock(NOW);

const buy = (who: string, order: string, when: string, total: number, category = 'books') =>
  ws.api.post('/v1/purchases', { orderId: order, customer: { externalId: who }, occurredAt: when, total, items: [{ sku: `sku-${category}`, category, quantity: 1, unitPrice: total }] });

beforeAll(async () => {
  srv = await startTestServer({ clock });
  ws = await newWorkspace(srv.url);
  other = await newWorkspace(srv.url);
  const people: Record<string, Record<string, unknown>> = {
    a: { email: 'a@x.test', country: 'US', birthDate: '1990-01-01', attributes: { tier: 'gold', visits: 5 } },
    b: { email: 'b@x.test', country: 'GB', attributes: { tier: 'silver' } },
    c: { email: 'c@x.test', phone: '+15125550100', country: 'US', birthDate: '1980-06-02' },
    d: { country: 'DE' },
    e: { email: 'e@x.test' },
    f: { email: 'f@x.test' },
  };
  for (const [id, p] of Object.entries(people)) expect((await ws.api.put(`/v1/customers/${id}`, p)).status).toBe(201);
  const ins = [
    await buy('a', 'a1', ago(40), 30), await buy('a', 'a2', ago(10), 50),
    await buy('b', 'b1', ago(35), 100, 'toys'),
    await buy('d', 'd1', ago(400), 200), await buy('d', 'd2', ago(350), 200), await buy('d', 'd3', ago(300), 200),
    await buy('e', 'e1', ago(30, 5), 20),
    await buy('f', 'f1', ago(31), 10),
  ];
  for (const r of ins) expect(r.status).toBe(201);
  expect((await ws.api.post('/v1/events', { customer: { externalId: 'a' }, type: 'email_open', occurredAt: ago(5) })).status).toBe(201);
  const ids = await srv.deps.db('customers').where({ workspace_id: ws.id }).select('id', 'external_id');
  const idOf = (x: string) => ids.find((r) => r.external_id === x)!.id;
  await srv.deps.db('customer_stats').where({ customer_id: idOf('a') }).update({ churn_risk: 0.7, lead_score: 40 });
  await srv.deps.db('customer_stats').where({ customer_id: idOf('b') }).update({ churn_risk: 0.9, lead_score: 10 });
  // The other workspace has a customer matching everything, which must never show up here.
  await other.api.put('/v1/customers/a', { email: 'a@x.test', country: 'US' });
});
afterAll(async () => {
  await srv.close();
});

const members = async (definition: unknown): Promise<string[]> => {
  const res = await ws.api.post('/v1/segments/preview', { definition, sampleSize: 100 });
  expect(res.status).toBe(200);
  expect(res.body.count).toBe(res.body.sample.length);
  return res.body.sample.map((m: { externalId: string }) => m.externalId).sort();
};

describe('presets', () => {
  test.each([
    ['new', ['e']],
    ['returning', ['a', 'd']],
    ['active', ['a', 'e']],
    ['atRisk', ['b', 'f']],
    ['lapsed', ['d']],
    ['vip', ['d']],
    ['fading', ['d']],
    ['likelyToChurn', ['a']],
  ])('when the preset %s is previewed, then exactly the known customers match', async (preset, expected) => {
    expect(await members({ preset })).toEqual(expected);
  });

  test('when presets are listed, then each comes with its rule in the rule language', async () => {
    const res = await ws.api.get('/v1/segments/presets');
    expect(res.status).toBe(200);
    const fading = res.body.data.find((p: { name: string }) => p.name === 'fading');
    expect(fading.definition.all).toHaveLength(3);
    expect(res.body.data.map((p: { name: string }) => p.name)).toContain('likelyToChurn');
  });
});

describe('ops', () => {
  test.each([
    [{ field: 'country', op: 'eq', value: 'US' }, ['a', 'c']],
    [{ field: 'country', op: 'neq', value: 'US' }, ['b', 'd', 'e', 'f']],
    [{ field: 'country', op: 'in', value: ['GB', 'DE'] }, ['b', 'd']],
    [{ field: 'country', op: 'notIn', value: ['GB', 'DE'] }, ['a', 'c', 'e', 'f']],
    [{ field: 'email', op: 'contains', value: 'A@X' }, ['a']],
    [{ field: 'phone', op: 'exists' }, ['c']],
    [{ field: 'email', op: 'notExists' }, ['d']],
    [{ field: 'age', op: 'eq', value: 45 }, ['c']],
    [{ field: 'age', op: 'between', value: [36, 36] }, ['a']],
    // A customer without purchases has zero counts and spend, and no purchase dates.
    [{ field: 'purchaseCount', op: 'eq', value: 0 }, ['c']],
    [{ field: 'daysSinceLastPurchase', op: 'notExists' }, ['c']],
    [{ field: 'totalSpent', op: 'gt', value: 80 }, ['b', 'd']],
    [{ field: 'totalSpent', op: 'gte', value: 80 }, ['a', 'b', 'd']],
    [{ field: 'totalSpent', op: 'lt', value: 20 }, ['c', 'f']],
    [{ field: 'totalSpent', op: 'lte', value: 20 }, ['c', 'e', 'f']],
    [{ field: 'avgOrderValue', op: 'eq', value: 40 }, ['a']],
    [{ field: 'daysSinceLastPurchase', op: 'eq', value: 30 }, ['e']],
    [{ field: 'daysSinceLastPurchase', op: 'lt', value: 31 }, ['a', 'e']],
    [{ field: 'avgDaysBetweenPurchases', op: 'eq', value: 50 }, ['d']],
    [{ field: 'totalSpent', op: 'bottomPercent', value: 20 }, ['f']],
    [{ field: 'leadScore', op: 'gte', value: 20 }, ['a']],
    [{ field: 'churnRisk', op: 'gt', value: 0.8 }, ['b']],
    [{ field: 'attributes.tier', op: 'eq', value: 'gold' }, ['a']],
    [{ field: 'attributes.visits', op: 'gt', value: 4 }, ['a']],
    [{ field: 'attributes.tier', op: 'exists' }, ['a', 'b']],
    [{ purchased: { category: 'toys' } }, ['b']],
    [{ purchased: { withinDays: 30 } }, ['a', 'e']],
    [{ purchased: { withinDays: 31 } }, ['a', 'e', 'f']],
    [{ purchased: { minCount: 3 } }, ['d']],
    [{ purchased: { category: 'books', minSpent: 80 } }, ['a', 'd']],
    [{ event: { type: 'email_open', withinDays: 5 } }, ['a']],
    [{ event: { type: 'email_open', withinDays: 4 } }, []],
    [{ not: { purchased: {} } }, ['c']],
    [{ any: [{ field: 'country', op: 'eq', value: 'DE' }, { preset: 'new' }] }, ['d', 'e']],
    [{ all: [] }, ['a', 'b', 'c', 'd', 'e', 'f']],
    [{ any: [] }, []],
  ])('when %j is previewed, then exactly the known customers match', async (definition, expected) => {
    expect(await members(definition)).toEqual(expected);
  });
});

describe('segments CRUD, references, static lists', () => {
  test('when a segment is created, counted, paged and patched, then every view agrees', async () => {
    const s = await ws.api.post('/v1/segments', { name: 'buyers', definition: { purchased: {} } });
    expect(s.status).toBe(201);
    expect((await ws.api.get(`/v1/segments/${s.body.id}/count`)).body).toEqual({ count: 5 });
    const p1 = await ws.api.get(`/v1/segments/${s.body.id}/members?limit=3`);
    const p2 = await ws.api.get(`/v1/segments/${s.body.id}/members?limit=3&cursor=${p1.body.nextCursor}`);
    expect([...p1.body.data, ...p2.body.data].map((m: { externalId: string }) => m.externalId).sort()).toEqual(['a', 'b', 'd', 'e', 'f']);
    expect(p2.body.nextCursor).toBeNull();
    const patched = await ws.api.patch(`/v1/segments/${s.body.id}`, { definition: { preset: 'vip' } });
    expect(patched.status).toBe(200);
    expect((await ws.api.get(`/v1/segments/${s.body.id}/count`)).body).toEqual({ count: 1 });
    expect((await other.api.get(`/v1/segments/${s.body.id}`)).status).toBe(404);
  });

  test('when a segment references another, then a change to the referenced one reaches it, and a cycle is a 422', async () => {
    const inner = await ws.api.post('/v1/segments', { name: 'us', definition: { field: 'country', op: 'eq', value: 'US' } });
    const outer = await ws.api.post('/v1/segments', { name: 'us buyers', definition: { all: [{ segment: inner.body.id }, { purchased: {} }] } });
    expect(outer.status).toBe(201);
    expect(outer.body.definition).toEqual({ all: [{ segment: inner.body.id }, { purchased: {} }] });
    expect((await ws.api.get(`/v1/segments/${outer.body.id}/count`)).body.count).toBe(1);
    await ws.api.patch(`/v1/segments/${inner.body.id}`, { definition: { field: 'country', op: 'in', value: ['US', 'GB'] } });
    expect((await ws.api.get(`/v1/segments/${outer.body.id}/count`)).body.count).toBe(2);
    const cycle = await ws.api.patch(`/v1/segments/${inner.body.id}`, { definition: { not: { segment: outer.body.id } } });
    expect(cycle.status).toBe(422);
    expect(cycle.body.error.details[0].path).toBe('definition.not.segment');
    expect((await ws.api.delete(`/v1/segments/${inner.body.id}`)).status).toBe(409);
  });

  test('when another workspace segment is referenced, then 404 naming the path', async () => {
    const foreign = await other.api.post('/v1/segments', { name: 'x', definition: { preset: 'vip' } });
    const res = await ws.api.post('/v1/segments', { name: 'y', definition: { any: [{ segment: foreign.body.id }] } });
    expect(res.status).toBe(404);
    expect(res.body.error.details[0].path).toBe('definition.any.0.segment');
  });

  test('when a static segment is made from a list, a CSV and a snapshot, then each holds exactly those customers and works inside a rule', async () => {
    const list = await ws.api.post('/v1/segments', { name: 'list', members: ['a', 'c', 'nobody'] });
    expect(list.status).toBe(201);
    expect(list.body).toMatchObject({ kind: 'static', memberCount: 2, unmatchedCount: 1 });
    expect(await members({ all: [{ segment: list.body.id }, { purchased: {} }] })).toEqual(['a']);
    const csv = await client(srv.url, ws.key).post('/v1/segments/csv?name=mails&column=email', 'email\nB@x.test\ne@x.test\nzz@x.test\n', { 'content-type': 'text/csv' });
    expect(csv.status).toBe(201);
    expect(csv.body).toMatchObject({ memberCount: 2, unmatchedCount: 1 });
    const live = await ws.api.post('/v1/segments', { name: 'active', definition: { preset: 'active' } });
    const snap = await ws.api.post(`/v1/segments/${live.body.id}/snapshot`, { name: 'frozen' });
    expect(snap.status).toBe(201);
    expect(snap.body.memberCount).toBe(2);
    // Time passes: the live segment empties, the snapshot does not.
    clock.set(new Date(NOW.getTime() + 60 * DAY));
    try {
      expect((await ws.api.get(`/v1/segments/${live.body.id}/count`)).body.count).toBe(0);
      expect((await ws.api.get(`/v1/segments/${snap.body.id}/count`)).body.count).toBe(2);
    } finally {
      clock.set(NOW);
    }
  });

  test('when a customer is explained, then each node is marked matched or not', async () => {
    const s = await ws.api.post('/v1/segments', { name: 'ex', definition: { all: [{ field: 'country', op: 'eq', value: 'US' }, { not: { preset: 'active' } }] } });
    const res = await ws.api.get(`/v1/segments/${s.body.id}/explain/a`);
    expect(res.status).toBe(200);
    expect(res.body.matched).toBe(false);
    expect(res.body.tree.all[0]).toMatchObject({ field: 'country', matched: true });
    expect(res.body.tree.all[1]).toMatchObject({ matched: false, not: { preset: 'active', matched: true } });
    expect((await ws.api.get(`/v1/segments/${s.body.id}/explain/c`)).body.matched).toBe(true);
    expect((await ws.api.get(`/v1/segments/${s.body.id}/explain/nobody`)).status).toBe(404);
  });

  test('when fields are listed, then prediction fields are there with their ops', async () => {
    const res = await ws.api.get('/v1/segments/fields');
    const names = res.body.data.map((f: { name: string }) => f.name);
    for (const n of ['leadScore', 'pAlive', 'churnRisk', 'expectedPurchases90d', 'predictedSpend365d', 'totalSpent', 'age']) expect(names).toContain(n);
    expect(res.body.data.find((f: { name: string }) => f.name === 'totalSpent').ops).toContain('topPercent');
  });
});

describe('bad input', () => {
  const deep = (n: number): unknown => (n === 0 ? { field: 'age', op: 'gt', value: 1 } : { not: deep(n - 1) });
  test.each([
    [{ field: 'nope', op: 'eq', value: 1 }, 'definition.field'],
    [{ field: 'email" OR 1=1--', op: 'eq', value: 'x' }, 'definition.field'],
    [{ field: 'a.b', op: 'eq', value: 'x' }, 'definition.field'],
    [{ field: 'x as y', op: 'eq', value: 'x' }, 'definition.field'],
    [{ field: 'attributes.a;drop table customers', op: 'exists' }, 'definition.field'],
    [{ field: 'country', op: ';drop table customers', value: 'x' }, 'definition.op'],
    [{ field: 'country', op: 'gt', value: 'x' }, 'definition.op'],
    [{ field: 'totalSpent', op: 'gt', value: "1; drop table customers" }, 'definition.value'],
    [{ field: 'totalSpent', op: 'between', value: [1] }, 'definition.value'],
    [{ field: 'totalSpent', op: 'in', value: [] }, 'definition.value'],
    [{ field: 'totalSpent', op: 'topPercent', value: 101 }, 'definition.value'],
    [{ all: [{ field: 'age', op: 'gt', value: 1 }, { any: [{ preset: 'nope' }] }] }, 'definition.all.1.any.0.preset'],
    [{ purchased: { withinDays: -1 } }, 'definition.purchased.withinDays'],
    [{ segment: 'not-a-uuid' }, 'definition.segment'],
    [deep(25), expect.stringMatching(/^definition(\.not)+$/)],
    [{ any: Array.from({ length: 201 }, () => ({ field: 'age', op: 'gt', value: 1 })) }, expect.stringMatching(/^definition\.any\.\d+$/)],
  ])('when the definition is %j, then 422 naming the path and nothing runs', async (definition, path) => {
    const res = await ws.api.post('/v1/segments', { name: 'bad', definition });
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toEqual(path);
    expect((await ws.api.get('/v1/customers/a')).status).toBe(200);
  });
});
