import { retailPurchases } from './helpers/retail';
import { Worker, QueueEvents } from 'bullmq';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { QUEUE_NAMES } from '../src/queues';
import { enqueueFit } from '../src/predictions/jobs';
import { getFit } from '../src/predictions/repo';
import { scoreWorkspace, summaryOfFit } from '../src/predictions/service';
import { startPredictionsWorker } from '../workers/predictions-worker';

const DAY = 86400000;


/**
 * Online Retail invoices as purchases. Cancellations ("C" invoices) are skipped rather than
 * booked as refunds: they do not name the invoice they cancel, so there is nothing to refund.
 * Rows without a customer are skipped too.
 */

/** Area under the ROC curve: the chance that a random positive outranks a random negative (ties count half). */
function auc(scores: number[], labels: boolean[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rankSumPos = 0;
  let nPos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && scores[idx[j]!] === scores[idx[i]!]) j++;
    const midRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (labels[idx[k]!]) (rankSumPos += midRank), nPos++;
    i = j;
  }
  const nNeg = labels.length - nPos;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

test('auc helper: when the scores separate perfectly or not at all, then 1 and 0.5', () => {
  expect(auc([0.1, 0.2, 0.8, 0.9], [false, false, true, true])).toBe(1);
  expect(auc([0.5, 0.5, 0.5, 0.5], [false, true, false, true])).toBe(0.5);
});

/**
 * What this data set shows (see the closing note of issue 7): fitted before the last 90 days, the
 * maximum-likelihood BG/NBD puts the drop-out probability at zero (a/(a+b) -> 0; an independent
 * scipy fit of the same summaries agrees, log-likelihood -22428.41 in days). With no drop-out,
 * pAlive is ~1 for everyone, and BG/NBD gives every one-time buyer pAlive = 1 by construction, yet
 * one-time buyers are the ones who mostly did not come back. So churnRisk ranks poorly here and
 * its AUC is recorded, not dressed up; the model's forecast of purchases does rank them.
 */
describe('Online Retail: fitted on the data before the last 90 days, scored against who bought in them', () => {
  let rows: Array<{ external_id: string; churn_risk: number; p_alive: number; expected_purchases_90d: number; purchase_count: number }>;
  let label: (externalId: string) => boolean;
  let fit: any;
  let invoices: ReturnType<typeof retailPurchases>;
  let cutoff: Date;
  let wsId: string;

  beforeAll(async () => {
    const ws = await newWorkspace(srv.url, 'retail');
    wsId = ws.id;
    invoices = retailPurchases();
    for (let i = 0; i < invoices.length; i += 1000) {
      const res = await ws.api.post('/v1/purchases/batch', { purchases: invoices.slice(i, i + 1000) });
      expect(res.status).toBe(200);
      expect(res.body.errors).toEqual([]);
    }
    const last = Math.max(...invoices.map((v) => Date.parse(v.occurredAt)));
    cutoff = new Date(last - 90 * DAY);
    const res = await ws.api.post('/v1/predictions/fit', { asOf: cutoff.toISOString(), model: 'bg-nbd' });
    expect(res.status).toBe(200);
    fit = res.body;
    // Label from the data itself: no purchase after the cutoff = churned.
    const boughtAfter = new Set(invoices.filter((v) => Date.parse(v.occurredAt) > cutoff.getTime()).map((v) => v.customer.externalId));
    label = (id) => !boughtAfter.has(id);
    rows = (
      await srv.deps.db('customers as c').join('customer_stats as s', 's.customer_id', 'c.id').where('c.workspace_id', ws.id).whereNotNull('s.churn_risk').select('c.external_id', 's.churn_risk', 's.p_alive', 's.expected_purchases_90d')
    ).map((r: any) => ({ ...r, churn_risk: Number(r.churn_risk), p_alive: Number(r.p_alive), expected_purchases_90d: Number(r.expected_purchases_90d) }));
    // Repeat purchase days as of the cutoff, from the invoices (the stats count all purchases).
    const days = new Map<string, Set<string>>();
    for (const v of invoices) if (Date.parse(v.occurredAt) <= cutoff.getTime()) (days.get(v.customer.externalId) ?? days.set(v.customer.externalId, new Set()).get(v.customer.externalId)!).add(v.occurredAt.slice(0, 10));
    for (const r of rows) r.purchase_count = days.get(r.external_id)?.size ?? 0;
  }, 240_000);

  test('when fitted in days, then every customer who bought before the cutoff is scored and the fit is the maximum found independently', () => {
    expect(fit.scoring.status).toBe('done');
    expect(rows.length).toBe(fit.customers);
    expect(rows.length).toBe(2671);
    expect(fit.logLikelihood).toBeCloseTo(-22428.41, 1);
    expect(fit.params.r).toBeCloseTo(0.74, 2);
    expect(fit.params.a / (fit.params.a + fit.params.b)).toBeLessThan(1e-3); // drop-out ~ 0
  });

  test('when churnRisk is read, then the learned model ranks who did not buy well over everyone, where BG/NBD\'s 1 - pAlive ranked worse than chance', () => {
    const once = rows.filter((r) => r.purchase_count === 1);
    const repeat = rows.filter((r) => r.purchase_count > 1);
    expect(once.length + repeat.length).toBe(rows.length);
    expect(once.every((r) => r.p_alive === 1)).toBe(true); // BG/NBD: one-time buyers cannot have lapsed
    const labels = rows.map((r) => label(r.external_id));
    const oldWay = auc(rows.map((r) => 1 - r.p_alive), labels);
    const learned = auc(rows.map((r) => r.churn_risk), labels);
    const rep = auc(repeat.map((r) => r.churn_risk), repeat.map((r) => label(r.external_id)));
    process.stdout.write(`online-retail AUC for "no purchase in the last 90 days": churnRisk all ${learned.toFixed(4)} (n=${rows.length}), repeat customers ${rep.toFixed(4)} (n=${repeat.length}), BG/NBD 1 - pAlive all ${oldWay.toFixed(4)}; params ${JSON.stringify(fit.params)}\n`);
    // The half who bought once are tied at 1 - pAlive = 0, and 2/3 of them churned: worse than a coin.
    expect(oldWay).toBeLessThan(0.5);
    expect(learned).toBeGreaterThan(0.7);
    expect(once.some((r) => r.churn_risk !== once[0]!.churn_risk)).toBe(true);
  });

  test('when customers are ranked by their expected purchases in the next 90 days, then those who did not buy rank lowest (AUC above 0.7)', () => {
    const value = auc(rows.map((r) => -r.expected_purchases_90d), rows.map((r) => label(r.external_id)));
    expect(value).toBeGreaterThan(0.7);
  });

  test('when a customer first bought after the cutoff, then they have no forecast', async () => {
    const firstAfter = new Set(invoices.map((v) => v.customer.externalId));
    for (const v of invoices) if (Date.parse(v.occurredAt) <= cutoff.getTime()) firstAfter.delete(v.customer.externalId);
    const scored = new Set(rows.map((r) => r.external_id));
    expect(firstAfter.size).toBeGreaterThan(0);
    for (const id of firstAfter) expect(scored.has(id)).toBe(false);
  });

  test('when the scores are rewritten in many small batches by concurrent writers, then every customer is counted once and the values are unchanged', async () => {
    const db = srv.deps.db;
    const row = (await getFit(db, wsId, fit.id))!;
    const scored = await scoreWorkspace(db, row, await summaryOfFit(db, wsId, cutoff), new Date(), 100);
    expect(scored).toBe(2671);
    expect((await getFit(db, wsId, fit.id))!.scored_customers).toBe(2671);
    const again = await db('customers as c').join('customer_stats as s', 's.customer_id', 'c.id').where('c.workspace_id', wsId).whereNotNull('s.churn_risk').select('c.external_id', 's.churn_risk');
    const before = new Map(rows.map((r) => [r.external_id, r.churn_risk]));
    expect(again).toHaveLength(2671);
    for (const r of again) expect(Number(r.churn_risk)).toBe(before.get(r.external_id));
  });
});

describe('the fit as a job', () => {
  let worker: Worker;
  afterAll(async () => {
    await worker?.close();
  });

  test('when a fit job runs for a workspace, then a fit as of now is stored and its customers are scored', async () => {
    const ws = await newWorkspace(srv.url, 'job');
    const now = Date.now();
    const purchases = [];
    for (let c = 0; c < 120; c++) {
      const n = 1 + (c % 4);
      for (let k = 0; k < n; k++) purchases.push({ orderId: `j${c}-${k}`, customer: { externalId: `k${c}` }, occurredAt: new Date(now - (200 - 30 * k - (c % 17)) * DAY).toISOString(), total: 10 + (c % 7) });
    }
    expect((await ws.api.post('/v1/purchases/batch', { purchases })).status).toBe(200);
    worker = await startPredictionsWorker(srv.deps);
    const events = new QueueEvents(QUEUE_NAMES.predictions, { connection: srv.deps.redis.duplicate(), prefix: srv.deps.queues.prefix });
    await events.waitUntilReady();
    try {
      await enqueueFit(srv.deps.queues, ws.id);
      const jobs = await srv.deps.queues.get(QUEUE_NAMES.predictions).getJobs(['waiting', 'active', 'delayed', 'completed']);
      const job = jobs.find((j) => j.name === 'fit' && j.data.workspaceId === ws.id)!;
      expect(Object.keys(job.data)).toEqual(['workspaceId']); // ids only in Redis
      const result = await job.waitUntilFinished(events, 150_000);
      expect(result.scored).toBe(120);
      const model = await ws.api.get('/v1/predictions/model');
      expect(model.status).toBe(200);
      expect(Math.abs(Date.parse(model.body.asOf) - Date.now())).toBeLessThan(300_000); // asOf = when the job ran
      expect(model.body.scoring.status).toBe('done');
      expect((await ws.api.get('/v1/customers/k5')).body.stats.pAlive).toBeGreaterThan(0);
    } finally {
      await events.close();
    }
  }, 180_000);
});
