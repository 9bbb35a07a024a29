import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ManualClock } from '../src/clock';
import { QUEUE_NAMES } from '../src/queues';
import { startConnectorWorker } from '../workers/connector-worker';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/** A delivery stored while its job was lost (Redis emptied, say): the platform's redelivery queues it again. */
const clock = new ManualClock(new Date());
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ clock });
});
afterAll(async () => {
  await srv.close();
});

test('when a stored delivery lost its job, then a redelivery of it queues it again once no job of it can be waiting, and it is mapped once', async () => {
  const ws = await newWorkspace(srv.url);
  const secret = 'shpss_lost_job_secret';
  const { id } = (await ws.api.post('/v1/connectors', { type: 'shopify', name: 's', secret })).body;
  const body = readFileSync(join(__dirname, 'fixtures/connectors/shopify-order-pos.json'));
  const deliver = () =>
    fetch(`${srv.url}/connect/shopify/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'lost-1', 'x-shopify-hmac-sha256': createHmac('sha256', secret).update(body).digest('base64') },
      body,
    }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id: string } }));
  const queue = srv.deps.queues.get(QUEUE_NAMES.connectors);
  const first = await deliver();
  expect(first.status).toBe(200);
  await queue.obliterate({ force: true }); // the job is lost; the delivery is stored, not mapped

  // Soon after, a redelivery does not queue it again (its job could still be waiting or retrying).
  expect((await deliver()).status).toBe(200);
  expect(await queue.getJob(`cd-${first.body.id}`)).toBeUndefined();
  clock.advance(11 * 60_000);
  expect((await deliver()).status).toBe(200);
  expect(await queue.getJob(`cd-${first.body.id}`)).toBeDefined();

  const worker = await startConnectorWorker(srv.deps, { concurrency: 2 });
  try {
    for (const end = Date.now() + 10_000; ; ) {
      const row = await srv.deps.db('connector_deliveries').where({ id: first.body.id }).first();
      if (row.body === null) break;
      if (Date.now() > end) throw new Error('the lost delivery was not mapped');
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await worker.close();
  }
  const list = (await ws.api.get(`/v1/connectors/${id}/deliveries`)).body.data;
  expect(list.map((d: { outcome: string }) => d.outcome)).toEqual(['duplicate', 'duplicate', 'stored']);
  expect((await ws.api.get('/v1/customers/shopify:6940021194755')).body.stats).toMatchObject({ purchaseCount: 1 });
});
