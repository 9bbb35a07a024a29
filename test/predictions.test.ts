import { readFileSync } from 'node:fs';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { loadSummary } from '../src/predictions/repo';
import { loadHistory, purchasesBetween, summaryAt } from '../src/predictions/history';
import { expectedPurchases, pAlive } from '../src/predictions/bgnbd';
import { conditionalSpend } from '../src/predictions/gammagamma';

const DATA = `${__dirname}/fixtures/data`;
const AS_OF = '1997-09-30T00:00:00.000Z'; // end of the 39-week calibration period

type Api = Awaited<ReturnType<typeof newWorkspace>>['api'];

/** Every CDNOW transaction through the purchases API: externalId = sample id, one order per line. */
async function loadCdnow(api: Api) {
  const lines = readFileSync(`${DATA}/cdnow-sample.txt`, 'utf8').trim().split('\n');
  const purchases = lines.map((line, i) => {
    const [, id, d, , value] = line.trim().split(/\s+/);
    return {
      orderId: `cdnow-${i}`,
      customer: { externalId: String(Number(id)) },
      occurredAt: `${d!.slice(0, 4)}-${d!.slice(4, 6)}-${d!.slice(6, 8)}T00:00:00Z`,
      total: Number(value),
    };
  });
  for (let i = 0; i < purchases.length; i += 1000) {
    const res = await api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) });
    expect(res.status).toBe(200);
    expect(res.body.errors).toEqual([]);
  }
  return purchases.length;
}

const summaryCsv = () =>
  new Map(
    readFileSync(`${DATA}/cdnow-summary.csv`, 'utf8').trim().split('\n').slice(1).map((l) => {
      const [id, x, tx, T, zbar] = l.split(',').map(Number);
      return [String(id), { x: x!, tx: tx!, T: T!, zbar: zbar! }];
    }),
  );

const within = (got: number, want: number, tol: number) => expect(Math.abs(got / want - 1)).toBeLessThan(tol);

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

describe('CDNOW: fit and scores through the API', () => {
  let ws: Awaited<ReturnType<typeof newWorkspace>>;
  let fit: any;

  beforeAll(async () => {
    ws = await newWorkspace(srv.url, 'cdnow');
    expect(await loadCdnow(ws.api)).toBe(6919);
  }, 120_000);

  test('when summarised as of the end of calibration, then x, t_x, T and mean repeat value equal cdnow-summary.csv for every customer', async () => {
    const s = await loadSummary(srv.deps.db, ws.id, new Date(AS_OF));
    const ext = new Map<string, string>(
      (await srv.deps.db('customers').where({ workspace_id: ws.id }).select('id', 'external_id')).map((r: any) => [String(r.id), r.external_id]),
    );
    const want = summaryCsv();
    expect(s.customerId).toHaveLength(2357);
    let checked = 0;
    s.customerId.forEach((cid, i) => {
      const w = want.get(ext.get(cid)!)!;
      expect(s.x[i]).toBe(w.x);
      expect(Math.abs(s.txDays[i]! / 7 - w.tx)).toBeLessThan(0.006);
      expect(Math.abs(s.tDays[i]! / 7 - w.T)).toBeLessThan(0.006);
      expect(Math.abs((w.x ? s.repeatValue[i]! / w.x : 0) - w.zbar)).toBeLessThan(0.006);
      checked++;
    });
    expect(checked).toBe(2357);
  });

  test('when the history is read once up to 1998-06-30 and seen from 1997-09-30, then it is the summary as of 1997-09-30, and the days between are the holdout', async () => {
    const h = await loadHistory(srv.deps.db, ws.id, new Date('1998-06-30T00:00:00Z'), [new Date('1998-06-30T00:00:00Z'), new Date(AS_OF)]);
    const seen = summaryAt(h, 1);
    const direct = await loadSummary(srv.deps.db, ws.id, new Date(AS_OF));
    expect(seen.customerId).toEqual(direct.customerId);
    expect(Array.from(seen.x)).toEqual(Array.from(direct.x));
    expect(Array.from(seen.txDays)).toEqual(Array.from(direct.txDays));
    expect(Array.from(seen.tDays)).toEqual(Array.from(direct.tDays));
    seen.repeatValue.forEach((v, i) => expect(v).toBeCloseTo(direct.repeatValue[i]!, 6));
    expect(purchasesBetween(h, seen, 1, 0).reduce((a, b) => a + b, 0)).toBe(1882); // purchase days from 1997-10-01 to 1998-06-30
  });

  test('when fitted in weeks as of 1997-09-30, then BG/NBD is within 1% and Gamma-Gamma within 2% of the published estimates', async () => {
    const res = await ws.api.post('/v1/predictions/fit', { asOf: AS_OF, timeUnit: 'week', model: 'bg-nbd' });
    expect(res.status).toBe(200);
    fit = res.body;
    expect(fit.model).toBe('bg-nbd');
    expect(fit.customers).toBe(2357);
    within(fit.params.r, 0.243, 0.01);
    within(fit.params.alpha, 4.414, 0.01);
    within(fit.params.a, 0.793, 0.01);
    within(fit.params.b, 2.426, 0.01);
    expect(fit.logLikelihood).toBeCloseTo(-9582.4, 0);
    expect(fit.spend.model).toBe('gamma-gamma');
    expect(fit.spend.customers).toBe(946);
    within(fit.spend.params.p, 6.25, 0.02);
    within(fit.spend.params.q, 3.74, 0.02);
    within(fit.spend.params.gamma, 15.44, 0.02);
    expect(fit.scoring.status).toBe('done');
    expect(fit.scoring.customers).toBe(2357);

    const model = await ws.api.get('/v1/predictions/model');
    expect(model.status).toBe(200);
    expect(model.body.params).toEqual(fit.params);
    expect(model.body.asOf).toBe(AS_OF);
  });

  test.each([
    ['1', 2, 30.43, 38.86, 22.35], // two repeat days
    ['3', 0, 0, 38.86, 0], // a single purchase: P(alive) = 1
    ['18', 1, 4.86, 38.86, 9.99],
    ['1758', 0, 0, 29.86, 0],
    ['1516', 26, 30.86, 31.0, 39.97], // the heaviest buyers' corner of the model
  ])('when customer %s is read, then stats carry P(alive), churn risk, E[purchases in 90 days] and 365-day spend as computed by hand', async (id, x, tx, T, zbar) => {
    const want = summaryCsv().get(id)!;
    expect([want.x, want.tx, want.T, want.zbar]).toEqual([x, tx, T, zbar]);
    const res = await ws.api.get(`/v1/customers/${id}`);
    expect(res.status).toBe(200);
    const s = res.body.stats;
    const p = fit.params;
    // Equation 11 and the paper's notation, with the fitted parameters; exact T from the days.
    const Tw = Math.round(T * 7) / 7;
    const txw = Math.round(tx * 7) / 7;
    const alive = x === 0 ? 1 : 1 / (1 + (p.a / (p.b + x - 1)) * Math.pow((p.alpha + Tw) / (p.alpha + txw), p.r + x));
    expect(s.pAlive).toBeCloseTo(alive, 9);
    // churnRisk is the learned model's, not 1 - pAlive: the explanation recomputes it from the stored fit.
    const why = await ws.api.get(`/v1/predictions/customers/${id}`);
    expect(why.status).toBe(200);
    expect(s.churnRisk).toBeCloseTo(why.body.churnRisk, 4);
    expect(s.churnRisk).toBeGreaterThan(0);
    expect(s.churnRisk).toBeLessThan(1);
    expect(why.body.factors).toHaveLength(3);
    expect(s.expectedPurchases90d).toBeCloseTo(expectedPurchases(p, 90 / 7, x, txw, Tw), 9);
    const g = fit.spend.params;
    const perOrder = x > 0 ? conditionalSpend(g, x, zbar) : (g.p * g.gamma) / (g.q - 1);
    expect(s.predictedSpend365d).toBeCloseTo(expectedPurchases(p, 365 / 7, x, txw, Tw) * perOrder, 1);
    expect(pAlive(p, x, txw, Tw)).toBeCloseTo(alive, 12);
  });

  test('when fitted with the default model, then it is MBG/NBD with BTYDplus\'s estimates within 1% and a churn model learned on the 90 days before', async () => {
    const res = await ws.api.post('/v1/predictions/fit', { asOf: AS_OF, timeUnit: 'week' });
    expect(res.status).toBe(200);
    expect(res.body.model).toBe('mbg-nbd');
    within(res.body.params.r, 0.525, 0.01);
    within(res.body.params.alpha, 6.183, 0.01);
    within(res.body.params.a, 0.891, 0.01);
    within(res.body.params.b, 1.614, 0.01);
    expect(res.body.churn.model).toBe('logistic-regression');
    expect(res.body.churn.flagged).toBe(false);
    expect(res.body.churn.trainedOn).toMatchObject({ cutoff: '1997-07-02T00:00:00.000Z', customers: 2357 });
    // Stacked with the windows 30, 60 and 90 days before that one, each labelled by its next 90 days.
    expect(res.body.churn.trainedOn.windows.map((w: any) => w.cutoff)).toEqual(['1997-07-02T00:00:00.000Z', '1997-06-02T00:00:00.000Z', '1997-05-03T00:00:00.000Z', '1997-04-03T00:00:00.000Z']);
    expect(res.body.churn.trainedOn.rows).toBe(4 * 2357);
    expect(res.body.likelyToChurn.fallback).toBe(false);
    // The validation one step back (applied at 1997-07-02, judged on the 90 days to 1997-09-30).
    expect(res.body.validation.calibrationEnd).toBe('1997-07-02T00:00:00.000Z');
    expect(res.body.validation.churnAuc).toBeGreaterThan(0.5);
    expect(res.body.churn.distribution.reduce((n: number, b: any) => n + b.customers, 0)).toBe(2357);
    const model = await ws.api.get('/v1/predictions/model');
    expect(model.body.validation).toEqual(res.body.validation);
    // A one-time buyer can have lapsed under MBG/NBD.
    expect((await ws.api.get('/v1/customers/3')).body.stats.pAlive).toBeLessThan(1);
    fit = (await ws.api.post('/v1/predictions/fit', { asOf: AS_OF, timeUnit: 'week', model: 'bg-nbd' })).body; // back, for the tests below
  });

  test('when the fit body is malformed, then it is a 400 naming the field and no fit is stored', async () => {
    const before = await srv.deps.db('prediction_fits').where({ workspace_id: ws.id }).count({ n: '*' });
    const res = await ws.api.post('/v1/predictions/fit', { timeUnit: 'month' });
    expect(res.status).toBe(400);
    expect(res.body.error.details[0].path).toBe('timeUnit');
    const bad = await ws.api.post('/v1/predictions/fit', { model: 'pareto-nbd' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details[0].path).toBe('model');
    const after = await srv.deps.db('prediction_fits').where({ workspace_id: ws.id }).count({ n: '*' });
    expect(after).toEqual(before);
  });
});

describe('too few customers for a stable fit', () => {
  test('when a workspace has under 50 customers with repeat purchases, then the fit is a 422 saying so, and a later failing fit leaves the stored predictions alone', async () => {
    const ws = await newWorkspace(srv.url, 'tiny');
    const purchases = [];
    for (let c = 0; c < 80; c++) {
      const repeat = c < 49; // 49 repeat customers, 31 one-off
      purchases.push({ orderId: `o${c}a`, customer: { externalId: `c${c}` }, occurredAt: '2024-01-05T10:00:00Z', total: 20 });
      if (repeat) purchases.push({ orderId: `o${c}b`, customer: { externalId: `c${c}` }, occurredAt: '2024-03-05T10:00:00Z', total: 30 });
    }
    expect((await ws.api.post('/v1/purchases/batch', { purchases })).status).toBe(200);
    const res = await ws.api.post('/v1/predictions/fit', { asOf: '2024-06-01T00:00:00Z' });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('unprocessable');
    expect(res.body.error.message).toMatch(/too few customers.*49.*at least 50/);
    const c = await ws.api.get('/v1/customers/c0');
    expect(c.body.stats.purchaseCount).toBe(2);
    expect(c.body.stats.pAlive).toBeNull();
    expect(c.body.stats.churnRisk).toBeNull();
    expect(c.body.stats.expectedPurchases90d).toBeNull();
    expect(c.body.stats.predictedSpend365d).toBeNull();
    expect((await ws.api.get('/v1/predictions/model')).status).toBe(404);

    // One more repeat customer makes 50: the fit goes through and every buyer is scored.
    expect((await ws.api.post('/v1/purchases', { orderId: 'o70b', customer: { externalId: 'c70' }, occurredAt: '2024-04-01T10:00:00Z', total: 25 })).status).toBe(201);
    const ok = await ws.api.post('/v1/predictions/fit', { asOf: '2024-06-01T00:00:00Z' });
    expect(ok.status).toBe(200);
    expect(ok.body.scoring.customers).toBe(80);
    const scored = (await ws.api.get('/v1/customers/c0')).body.stats;
    expect(scored.pAlive).toBeGreaterThan(0);
    expect(scored.pAlive).toBeLessThanOrEqual(1);
    expect((await ws.api.get('/v1/customers/c75')).body.stats.pAlive).toBeLessThan(1); // single purchase, MBG/NBD
    // Too little history to learn churn from (80 customers before the training cut-off): the stated rule, said so.
    expect(ok.body.churn.model).toBe('rule');
    expect(ok.body.churn.rule).toBe('btyd');
    expect(ok.body.churn.reason).toMatch(/at least 200/);
    expect(ok.body.likelyToChurn.fallback).toBe(true);

    // Looking from a moment before the repeat purchases: too few again, and the stored forecasts stay as they were.
    const kept = (await ws.api.get('/v1/customers/c0')).body.stats;
    const early = await ws.api.post('/v1/predictions/fit', { asOf: '2024-02-01T00:00:00Z' });
    expect(early.status).toBe(422);
    expect(early.body.error.message).toMatch(/stored predictions are unchanged/);
    const after = (await ws.api.get('/v1/customers/c0')).body.stats;
    expect([after.pAlive, after.churnRisk, after.expectedPurchases90d]).toEqual([kept.pAlive, kept.churnRisk, kept.expectedPurchases90d]);
    expect((await ws.api.get('/v1/predictions/model')).body.id).toBe(ok.body.id);
  });
});
