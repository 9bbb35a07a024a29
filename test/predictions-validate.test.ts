import { retailPurchases } from './helpers/retail';
import { readFileSync } from 'node:fs';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';

const DATA = `${__dirname}/fixtures/data`;
type Ws = Awaited<ReturnType<typeof newWorkspace>>;

async function post(ws: Ws, purchases: object[]) {
  for (let i = 0; i < purchases.length; i += 1000) {
    const res = await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) });
    expect(res.status).toBe(200);
    expect(res.body.errors).toEqual([]);
  }
}

/** Every CDNOW transaction, one order per line, at midnight UTC of its day. */
export function cdnowPurchases() {
  return readFileSync(`${DATA}/cdnow-sample.txt`, 'utf8').trim().split('\n').map((line, i) => {
    const [, id, d, , value] = line.trim().split(/\s+/);
    return { orderId: `cdnow-${i}`, customer: { externalId: String(Number(id)) }, occurredAt: `${d!.slice(0, 4)}-${d!.slice(4, 6)}-${d!.slice(6, 8)}T00:00:00Z`, total: Number(value) };
  });
}


let srv: TestServer;
let cdnow: Ws;
let retail: Ws;
beforeAll(async () => {
  srv = await startTestServer();
  cdnow = await newWorkspace(srv.url, 'cdnow-validate');
  await post(cdnow, cdnowPurchases());
  retail = await newWorkspace(srv.url, 'retail-validate');
  await post(retail, retailPurchases());
}, 240_000);
afterAll(async () => {
  await srv.close();
});

const report = (name: string, v: any) =>
  process.stdout.write(`${name}: ${JSON.stringify({ ...v, calibration: undefined, churnModelReason: undefined })}\ncalibration ${JSON.stringify(v.calibration.map((d: any) => [d.predicted, d.observed]))}\n`);

describe('validation on real histories', () => {
  test('when CDNOW is validated from 1997-09-30 over 90 days, then churnRisk ranks at least as well as recency, beats the base rate and is calibrated', async () => {
    const res = await cdnow.api.post('/v1/predictions/validate', { calibrationEnd: '1997-09-30T00:00:00Z', holdoutEnd: '1997-12-29T00:00:00Z' });
    expect(res.status).toBe(200);
    const v = res.body;
    report('cdnow 90d', v);
    expect(v.model).toBe('mbg-nbd');
    expect(v.customers).toBe(2357);
    expect(v.churnModel).toBe('learned');
    expect(v.churnAuc).toBeGreaterThanOrEqual(v.recencyAuc);
    expect(v.brier).toBeLessThan(v.baseRateBrier);
    expect(Math.abs(v.meanChurnRisk - v.churnRate)).toBeLessThan(0.05);
  }, 60_000);

  test('when CDNOW is validated to 1998-06-30, then the predicted purchases are within 20% of the 1,882 actual', async () => {
    const res = await cdnow.api.post('/v1/predictions/validate', { calibrationEnd: '1997-09-30T00:00:00Z', holdoutEnd: '1998-06-30T00:00:00Z' });
    expect(res.status).toBe(200);
    report('cdnow holdout', res.body);
    expect(res.body.actualPurchases).toBe(1882);
    expect(Math.abs(res.body.predictedPurchases / 1882 - 1)).toBeLessThan(0.2);
    const bg = await cdnow.api.post('/v1/predictions/validate', { calibrationEnd: '1997-09-30T00:00:00Z', holdoutEnd: '1998-06-30T00:00:00Z', model: 'bg-nbd' });
    expect(bg.status).toBe(200);
    report('cdnow holdout bg-nbd', bg.body);
    expect(bg.body.model).toBe('bg-nbd');
  }, 60_000);

  test('when the Online Retail sample is validated from 2011-09-10, then churnRisk beats recency by 0.03 of AUC and the base rate on Brier, and is calibrated', async () => {
    const res = await retail.api.post('/v1/predictions/validate', { calibrationEnd: '2011-09-10T00:00:00Z' });
    expect(res.status).toBe(200);
    const v = res.body;
    report('retail', v);
    expect(v.churnModel).toBe('learned');
    expect(v.churnAuc).toBeGreaterThanOrEqual(v.recencyAuc + 0.03);
    expect(v.brier).toBeLessThan(v.baseRateBrier);
    // The model learns on four windows 30 days apart (cut-offs 2011-03-14 to 2011-06-12), when 50%
    // to 57% of this gift retailer's customers did not buy in the next 90 days, and is judged on
    // September to December, the run-up to Christmas, when 49.6% did not. Trained on the last
    // window alone it was 0.071 above; on the four, 0.0497 (a thin margin, recorded as measured).
    expect(Math.abs(v.meanChurnRisk - v.churnRate)).toBeLessThan(0.05);
  }, 60_000);
});
