import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { membersQuery } from '../src/segments/service';
import { PRESETS } from '../src/segments/presets';

const DAY = 86400000;
const NOW = Date.now();
const at = (daysAgo: number) => new Date(NOW - daysAgo * DAY).toISOString();

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

type Ws = Awaited<ReturnType<typeof newWorkspace>>;

/** c0..c9: c_i has i+1 purchases of 10 each, the last one i days ago. */
async function smallShop(ws: Ws) {
  const purchases = [];
  for (let i = 0; i < 10; i++) for (let k = 0; k <= i; k++) purchases.push({ orderId: `s${i}-${k}`, customer: { externalId: `c${i}` }, occurredAt: at(i + 40 * k), total: 10 });
  expect((await ws.api.post('/v1/purchases/batch', { purchases })).status).toBe(200);
  expect((await ws.api.put('/v1/customers/nobuy', { email: 'nobuy@example.com' })).status).toBeLessThan(300);
}

const leadScores = async (ws: Ws) =>
  Object.fromEntries(
    (await srv.deps.db('customers as c').join('customer_stats as s', 's.customer_id', 'c.id').where('c.workspace_id', ws.id).select('c.external_id', 's.lead_score')).map((r: any) => [r.external_id, r.lead_score]),
  );

describe('lead score rules', () => {
  let ws: Ws;
  beforeAll(async () => {
    ws = await newWorkspace(srv.url, 'scoring');
    await smallShop(ws);
  }, 30_000);

  test('when no rules were ever set, then GET answers an empty list and every score is 0', async () => {
    const res = await ws.api.get('/v1/scoring');
    expect(res.status).toBe(200);
    expect(res.body.rules).toEqual([]);
    expect(Object.values(await leadScores(ws)).every((v) => v === 0)).toBe(true);
  });

  test('when rules are put, then each customer scores the sum of the points of the rules they match, on the customer and in segments', async () => {
    const rules = [
      { name: 'repeat buyer', points: 20, when: { field: 'purchaseCount', op: 'gte', value: 3 } },
      { name: 'big spender', points: 15, when: { field: 'totalSpent', op: 'gte', value: 80 } },
      { name: 'gone quiet', points: -30, when: { any: [{ field: 'daysSinceLastPurchase', op: 'gt', value: 6.5 }, { field: 'purchaseCount', op: 'eq', value: 0 }] } },
      { name: 'nothing', points: 0, when: { field: 'purchaseCount', op: 'gte', value: 1 } },
    ];
    const res = await ws.api.put('/v1/scoring', { rules });
    expect(res.status).toBe(200);
    expect(res.body.rules).toEqual(rules);
    expect((await ws.api.get('/v1/scoring')).body.rules).toEqual(rules);

    // c_i: purchaseCount i+1, totalSpent 10(i+1), last purchase i days ago.
    const want: Record<string, number> = { nobuy: -30 };
    for (let i = 0; i < 10; i++) want[`c${i}`] = (i + 1 >= 3 ? 20 : 0) + (10 * (i + 1) >= 80 ? 15 : 0) + (i > 6 ? -30 : 0);
    expect(await leadScores(ws)).toEqual(want);
    expect((await ws.api.get('/v1/customers/c8')).body.stats.leadScore).toBe(5);
    expect((await ws.api.get('/v1/customers/c4')).body.stats.leadScore).toBe(20);

    const seg = await ws.api.post('/v1/segments/preview', { definition: { field: 'leadScore', op: 'gte', value: 20 } });
    expect(seg.status).toBe(200);
    expect(seg.body.count).toBe(Object.values(want).filter((v) => v >= 20).length);
  });

  test('when a rule refers to a saved segment, then it scores that segment\'s members and GET shows the reference as written', async () => {
    const seg = await ws.api.post('/v1/segments', { name: 'two or fewer', definition: { field: 'purchaseCount', op: 'lte', value: 2 } });
    expect(seg.status).toBe(201);
    const rules = [{ name: 'newcomers', points: 7, when: { segment: seg.body.id } }];
    expect((await ws.api.put('/v1/scoring', { rules })).status).toBe(200);
    expect((await ws.api.get('/v1/scoring')).body.rules).toEqual(rules);
    const got = await leadScores(ws);
    expect([got.c0, got.c1, got.c2, got.nobuy]).toEqual([7, 7, 0, 7]);
  });

  test.each([
    [{ name: 'x', points: 101, when: { field: 'purchaseCount', op: 'gte', value: 1 } }, 'rules.0.points'],
    [{ name: 'x', points: -101, when: { field: 'purchaseCount', op: 'gte', value: 1 } }, 'rules.0.points'],
    [{ name: 'x', points: 2.5, when: { field: 'purchaseCount', op: 'gte', value: 1 } }, 'rules.0.points'],
    [{ name: 'x', points: 5, when: { field: 'shoeSize', op: 'gte', value: 1 } }, 'rules.0.when'],
    [{ name: 'x', points: 5, when: { field: 'purchaseCount', op: 'contains', value: 'a' } }, 'rules.0.when'],
    [{ name: 'x', points: 5, when: { field: 'leadScore', op: 'gte', value: 1 } }, 'rules.0.when.field'],
  ])('when a rule is out of range or names an unknown field (%j), then 422 naming %s and the stored rules are unchanged', async (rule, path) => {
    const before = (await ws.api.get('/v1/scoring')).body;
    const scores = await leadScores(ws);
    const res = await ws.api.put('/v1/scoring', { rules: [rule] });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('unprocessable');
    expect(res.body.error.details.some((d: { path: string }) => d.path.startsWith(path))).toBe(true);
    expect((await ws.api.get('/v1/scoring')).body).toEqual(before);
    expect(await leadScores(ws)).toEqual(scores);
  });

  test('when a rule refers to another workspace\'s segment, then 404', async () => {
    const other = await newWorkspace(srv.url, 'other');
    const seg = await other.api.post('/v1/segments', { name: 'theirs', definition: { field: 'purchaseCount', op: 'gte', value: 1 } });
    const res = await ws.api.put('/v1/scoring', { rules: [{ name: 'x', points: 5, when: { segment: seg.body.id } }] });
    expect(res.status).toBe(404);
  });

  test('when the body is not a rule list, then 400', async () => {
    expect((await ws.api.put('/v1/scoring', { rules: [{ name: 'x', points: 'ten', when: {} }] })).status).toBe(400);
    expect((await ws.api.put('/v1/scoring', { rule: [] })).status).toBe(400);
  });

  test('when the rules are emptied, then every score goes back to 0', async () => {
    expect((await ws.api.put('/v1/scoring', { rules: [] })).status).toBe(200);
    expect(Object.values(await leadScores(ws)).every((v) => v === 0)).toBe(true);
  });
});

describe('prediction fields in segments', () => {
  test('when a workspace is fitted, then churnRisk, pAlive and the likelyToChurn preset select exactly the rows the stats say, and rules can score on them', async () => {
    const ws = await newWorkspace(srv.url, 'churny');
    const purchases = [];
    // 60 steady buyers (every 10 days up to now) and 60 who bought 6 times a year ago, then stopped.
    for (let c = 0; c < 60; c++) for (let k = 0; k < 12; k++) purchases.push({ orderId: `a${c}-${k}`, customer: { externalId: `steady${c}` }, occurredAt: at(1 + (c % 5) + 10 * k), total: 20 + (c % 3) });
    for (let c = 0; c < 60; c++) for (let k = 0; k < 6; k++) purchases.push({ orderId: `b${c}-${k}`, customer: { externalId: `gone${c}` }, occurredAt: at(300 + (c % 7) + 8 * k), total: 30 + (c % 4) });
    for (let c = 0; c < 20; c++) purchases.push({ orderId: `o${c}`, customer: { externalId: `once${c}` }, occurredAt: at(100 + c), total: 15 });
    for (let i = 0; i < purchases.length; i += 1000) expect((await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
    const fit = await ws.api.post('/v1/predictions/fit', {});
    expect(fit.body.error).toBeUndefined();
    expect(fit.status).toBe(200);

    const count = async (definition: unknown) => (await ws.api.post('/v1/segments/preview', { definition })).body.count;
    const statsCount = async (q: (b: any) => any) => Number((await q(srv.deps.db('customer_stats').where({ workspace_id: ws.id })).count({ n: '*' }))[0].n);
    const churners = await statsCount((b) => b.where('churn_risk', '>', 0.5).andWhere('purchase_count', '>=', 2));
    expect(churners).toBeGreaterThan(30); // the 60 who stopped a year ago, mostly
    expect(await count({ preset: 'likelyToChurn' })).toBe(churners);
    expect(await count({ field: 'churnRisk', op: 'gt', value: 0.5 })).toBe(await statsCount((b) => b.where('churn_risk', '>', 0.5)));
    expect(await count({ field: 'pAlive', op: 'gte', value: 0.9 })).toBe(await statsCount((b) => b.where('p_alive', '>=', 0.9)));
    expect(await count({ field: 'expectedPurchases90d', op: 'gt', value: 1 })).toBe(await statsCount((b) => b.where('expected_purchases_90d', '>', 1)));
    expect(await count({ field: 'predictedSpend365d', op: 'gt', value: 50 })).toBe(await statsCount((b) => b.where('predicted_spend_365d', '>', 50)));
    const direct = await membersQuery(srv.deps.db, ws.id, PRESETS.likelyToChurn.definition, new Date());
    expect(direct).toHaveLength(churners);

    // A rule on a prediction: scored on PUT, and again after the next fit.
    expect((await ws.api.put('/v1/scoring', { rules: [{ name: 'slipping', points: -40, when: { preset: 'likelyToChurn' } }] })).status).toBe(200);
    expect(await count({ field: 'leadScore', op: 'eq', value: -40 })).toBe(churners);
    expect((await ws.api.post('/v1/predictions/fit', {})).status).toBe(200);
    expect(await count({ field: 'leadScore', op: 'eq', value: -40 })).toBe(await statsCount((b) => b.where('churn_risk', '>', 0.5).andWhere('purchase_count', '>=', 2)));
  }, 240_000); // two fits; the shared test machine can be slow
});
