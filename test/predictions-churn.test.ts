import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { predictLogistic, trainLogistic } from '../src/predictions/logistic';
import { auc, calibrationDeciles, precisionAtTop } from '../src/predictions/metrics';
import { invertedHistory } from './helpers/predictions-data';

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

describe('the logistic model and the measures', () => {
  test('when trained, then the penalised score equations hold and the mean prediction equals the observed rate', () => {
    // y depends on x0 only, through a known logistic curve; x1 is noise.
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const n = 4000;
    const x0 = Float64Array.from({ length: n }, () => rnd() * 4 - 2);
    const x1 = Float64Array.from({ length: n }, () => rnd());
    const y = Uint8Array.from(x0, (v) => (rnd() < 1 / (1 + Math.exp(-(0.5 + 1.5 * v))) ? 1 : 0));
    const m = trainLogistic(['x0', 'x1'], [x0, x1], y, 1);
    const p = predictLogistic(m, [x0, x1]);
    const rate = y.reduce((s, v) => s + v, 0) / n;
    expect(p.reduce((s, v) => s + v, 0) / n).toBeCloseTo(rate, 8);
    // Gradient of the penalised log-likelihood in each standardised coefficient: sum (y - p) z_j = lambda w_j.
    [x0, x1].forEach((x, j) => {
      let g = 0;
      for (let i = 0; i < n; i++) g += (y[i]! - p[i]!) * ((x[i]! - m.mean[j]!) / m.sd[j]!);
      expect(g).toBeCloseTo(1 * m.coef[j]!, 6);
    });
    expect(m.coef[0]! / m.sd[0]!).toBeGreaterThan(1.2); // the slope comes back, near 1.5
    expect(m.coef[0]! / m.sd[0]!).toBeLessThan(1.8);
    expect(Math.abs(m.coef[1]!)).toBeLessThan(0.15);
  });

  test('when scores and labels are known, then AUC, deciles and the top share are what they should be', () => {
    expect(auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBe(0.75);
    expect(precisionAtTop([0.9, 0.8, 0.1, 0.2, 0.3], [1, 0, 0, 0, 1], 0.4)).toBe(0.5);
    const d = calibrationDeciles(Array.from({ length: 100 }, (_, i) => i / 100), Array.from({ length: 100 }, (_, i) => (i >= 90 ? 1 : 0)));
    expect(d).toHaveLength(10);
    expect(d[9]).toMatchObject({ customers: 10, observed: 1 });
    expect(d[0]!.observed).toBe(0);
  });
});

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

describe('a model that loses to recency', () => {
  test('when the learned model ranks worse than days since the last purchase on the workspace\'s own history, then it is flagged and churnRisk falls back to the recency rule', async () => {
    const ws = await newWorkspace(srv.url, 'inverted');
    const A = Date.parse('2025-06-01T00:00:00Z');
    const purchases = invertedHistory(A);
    for (let i = 0; i < purchases.length; i += 1000) expect((await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
    const res = await ws.api.post('/v1/predictions/fit', { asOf: iso(A) });
    expect(res.status).toBe(200);
    expect(res.body.validation.churnAuc).toBeLessThan(res.body.validation.recencyAuc);
    expect(res.body.churn).toMatchObject({ model: 'rule', rule: 'recency', flagged: true });
    expect(res.body.churn.reason).toMatch(/ranked worse than days since the last purchase/);
    expect(res.body.likelyToChurn.fallback).toBe(true);
    expect(res.body.likelyToChurn.churnRiskFrom).toMatch(/recency/);
    const presets = (await ws.api.get('/v1/segments/presets')).body.data;
    expect(presets.find((p: any) => p.name === 'likelyToChurn')).toMatchObject({ fallbackRule: 'recency', reason: expect.stringMatching(/ranked worse/) });
    expect(presets.find((p: any) => p.name === 'vip').fallbackRule).toBeUndefined();
    // The recency rule: the longer since the last purchase, the higher the risk.
    const recent = (await ws.api.get('/v1/customers/i1')).body.stats; // last purchase 30 days before A
    const quiet = (await ws.api.get('/v1/customers/i0')).body.stats; // last purchase 185 days before A
    expect(quiet.churnRisk).toBeGreaterThan(recent.churnRisk);
    const why = await ws.api.get('/v1/predictions/customers/i0');
    expect(why.body).toMatchObject({ churnModel: 'rule', rule: 'recency', flagged: true });
    expect(why.body.factors[0].feature).toBe('logRecency');
  }, 60_000);
});

describe('POST /v1/predictions/validate on bad input', () => {
  let ws: Awaited<ReturnType<typeof newWorkspace>>;
  const A = Date.parse('2025-06-01T00:00:00Z');
  beforeAll(async () => {
    ws = await newWorkspace(srv.url, 'validate-bad');
    const purchases = invertedHistory(A);
    for (let i = 0; i < purchases.length; i += 1000) expect((await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
    expect((await ws.api.post('/v1/predictions/fit', { asOf: iso(A) })).status).toBe(200);
  }, 60_000);

  const stored = async () => (await srv.deps.db('customer_stats').where({ workspace_id: ws.id }).orderBy('customer_id').select('customer_id', 'p_alive', 'churn_risk', 'expected_purchases_90d', 'prediction_fit_id')).map((r: any) => JSON.stringify(r));

  test.each([
    [{ calibrationEnd: iso(A), holdoutEnd: iso(A - 10 * DAY) }, 'holdoutEnd', /after holdoutEnd/],
    [{ calibrationEnd: iso(Date.now() + 5 * DAY) }, 'calibrationEnd', /in the future/],
    [{ calibrationEnd: iso(A - 900 * DAY) }, 'calibrationEnd', /before any purchase/],
    [{ calibrationEnd: iso(A - 320 * DAY) }, 'calibrationEnd', /too few customers.*at least 50/],
  ])('when the body is %j, then 422 on %s and the stored predictions are unchanged', async (body, path, message) => {
    const before = await stored();
    const res = await ws.api.post('/v1/predictions/validate', body);
    expect(res.status).toBe(422);
    expect(res.body.error.details[0].path).toBe(path);
    expect(res.body.error.message).toMatch(message);
    expect(await stored()).toEqual(before);
  });

  test('when a validation runs, then it answers the contract\'s fields and changes no stored prediction or fit', async () => {
    const before = await stored();
    const model = (await ws.api.get('/v1/predictions/model')).body;
    const res = await ws.api.post('/v1/predictions/validate', { calibrationEnd: iso(A - 90 * DAY), holdoutEnd: iso(A) });
    expect(res.status).toBe(200);
    for (const k of ['model', 'customers', 'holdoutDays', 'predictedPurchases', 'actualPurchases', 'meanAbsoluteError', 'churnAuc', 'recencyAuc', 'brier', 'baseRateBrier']) expect(res.body).toHaveProperty(k);
    expect(res.body.holdoutDays).toBe(90);
    expect(res.body.customers).toBe(400);
    expect(await stored()).toEqual(before);
    expect((await ws.api.get('/v1/predictions/model')).body).toEqual(model);
  });

  test('when the body is malformed or the customer unknown, then 400 and 404', async () => {
    const res = await ws.api.post('/v1/predictions/validate', { holdoutEnd: iso(A) });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('calibrationEnd');
    expect((await ws.api.get('/v1/predictions/customers/nobody')).status).toBe(404);
  });
});
