import { readFileSync } from 'node:fs';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { QUEUE_NAMES } from '../src/queues';

/**
 * Issue 15, security item 6: the fit request's work is bounded. It keeps the contract's 200, but
 * one fit runs at a time per workspace (across API processes: the lock is in Redis), and above
 * PREDICTIONS_INLINE_SCORE_MAX customers the scoring is left to a job.
 */
let srv: TestServer;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
beforeAll(async () => {
  srv = await startTestServer({ env: { PREDICTIONS_INLINE_SCORE_MAX: '500' } });
  ws = await newWorkspace(srv.url, 'bounded fit');
  const lines = readFileSync(`${__dirname}/fixtures/data/cdnow-sample.txt`, 'utf8').trim().split('\n');
  const purchases = lines.map((line, i) => {
    const [, id, d, , value] = line.trim().split(/\s+/);
    return { orderId: `cd-${i}`, customer: { externalId: String(Number(id)) }, occurredAt: `${d!.slice(0, 4)}-${d!.slice(4, 6)}-${d!.slice(6, 8)}T00:00:00Z`, total: Number(value) };
  });
  for (let i = 0; i < purchases.length; i += 1000) expect((await ws.api.post('/v1/purchases/batch', { purchases: purchases.slice(i, i + 1000) })).status).toBe(200);
}, 120_000);
afterAll(async () => srv.close());

test('when a workspace has more customers than PREDICTIONS_INLINE_SCORE_MAX, then the fit answers 200 with scoring queued, and the request scored no one', async () => {
  const res = await ws.api.post('/v1/predictions/fit', { asOf: '1997-09-30T00:00:00Z' });
  expect(res.status).toBe(200);
  expect(res.body.customers).toBe(2357);
  expect(res.body.scoring).toEqual({ status: 'queued' });
  const scored = await srv.deps.db('customer_stats as s').join('customers as c', 'c.id', 's.customer_id').where('c.workspace_id', ws.id).whereNotNull('s.prediction_fit_id').count({ n: '*' });
  expect(scored).toEqual([{ n: '0' }]);
  const jobs = await srv.deps.queues.get(QUEUE_NAMES.predictions).getJobs(['waiting', 'delayed', 'active']);
  expect(jobs.map((j) => [j.name, j.data.fitId])).toContainEqual(['score', res.body.id]);
}, 60_000);

test('when a fit of the workspace is already running (in this or another API process), then a second is a 409 and runs nothing', async () => {
  const key = `${srv.deps.queues.prefix}:predictions-fit:${ws.id}`;
  await srv.deps.redis.set(key, 'another-process', 'PX', 30_000);
  try {
    const before = await srv.deps.db('prediction_fits').where({ workspace_id: ws.id }).count({ n: '*' });
    const res = await ws.api.post('/v1/predictions/fit', {});
    expect(res.status).toBe(409);
    expect(await srv.deps.db('prediction_fits').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual(before);
  } finally {
    await srv.deps.redis.del(key);
  }
  expect((await ws.api.post('/v1/predictions/fit', { asOf: '1997-09-30T00:00:00Z' })).status).toBe(200);
}, 60_000);
