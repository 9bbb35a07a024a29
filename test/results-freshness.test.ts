import { randomBytes, randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import { createDb, Db } from '../src/db';
import { consumeFeed, feedCaughtUpAt } from '../src/feed';
import { workspaceAuth } from '../src/http/auth';
import { Queues, QUEUE_NAMES } from '../src/queues';
import { createRedis, RedisClient } from '../src/redis';
import { attributionWaker } from '../src/results/wake';
import { startResultsWorker } from '../workers/results-worker';
import { newWorkspace } from './helpers/api';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from './helpers/env';
import { customerId, makeCampaign, makeMessage } from './helpers/results-factory';
import { startTestServer, TestServer } from './helpers/server';
import { until } from './helpers/until';

/**
 * Fresh reports: the API wakes the results worker after purchases commit (so conversions do not
 * wait for its schedule), and the report says how far attribution has got (attributedThrough),
 * a time the feed's horizon vouches for.
 */
jest.setTimeout(60_000);

let srv: TestServer;
let other: Db;
let results: Worker;
beforeAll(async () => {
  srv = await startTestServer({ env: { ATTRIBUTION_WAKE_MS: '200' } });
  other = createDb(TEST_DATABASE_URL, 2);
  // The schedule is an hour: within this file only a wake-up can run attribution after its first run.
  results = await startResultsWorker(srv.deps, { everyMs: 3600_000 });
});
afterAll(async () => {
  await results?.close();
  await other?.destroy();
  await srv?.close();
});

const dbNow = async (db: Db = srv.deps.db) => (await db.raw('SELECT clock_timestamp() AS t')).rows[0].t as Date;

describe('attribution wake-up', () => {
  test('when a purchase commits, then the woken worker converts its message, and the report gives a freshness time after the commit', async () => {
    const ws = await newWorkspace(srv.url, 'fresh shop');
    expect((await ws.api.put('/v1/customers/fresh-1', { email: 'fresh-1@example.test' })).status).toBe(201);
    const campaignId = await makeCampaign(srv.deps.db, ws.id, { startedAt: new Date(Date.now() - 3600_000) });
    const messageId = await makeMessage(srv.deps.db, ws.id, { campaignId, customerId: await customerId(srv.deps.db, ws.id, 'fresh-1'), status: 'delivered', sentAt: new Date(Date.now() - 3600_000), deliveredAt: new Date(Date.now() - 3600_000) });
    // The worker's first (scheduled) run is over before the purchase exists.
    await until('first run', async () => (await feedCaughtUpAt(srv.deps.db, 'attribution')) !== null);

    const res = await ws.api.post('/v1/purchases', { orderId: 'fresh-o1', customer: { externalId: 'fresh-1' }, occurredAt: new Date().toISOString(), total: 42 });
    expect(res.status).toBe(201);
    const committed = await dbNow();
    await until('converted', async () => (await srv.deps.db('messages').where({ id: messageId }).first('converted_at')).converted_at !== null);
    const report = await until('fresh report', async () => {
      const r = await ws.api.get(`/v1/campaigns/${campaignId}/report`);
      return r.body.attributedThrough && Date.parse(r.body.attributedThrough) >= committed.getTime() ? r.body : undefined;
    });
    expect(report.treatment.converted).toBe(1);
    expect(report.treatment.revenue).toBe(42);
  });

  test('when the API stores purchases many times in one slot, then one wake-up job is queued for the slot, under its id, on the results queue', async () => {
    const redis: RedisClient = createRedis(TEST_REDIS_URL);
    const queues = new Queues(redis, `hark-test-${randomBytes(4).toString('hex')}`);
    try {
      let t = 10_050;
      const wake = attributionWaker(queues, { everyMs: 1000, now: () => t });
      wake();
      t = 10_400;
      wake();
      wake();
      t = 11_020; // the next slot
      wake();
      const q = queues.get(QUEUE_NAMES.results);
      await until('two jobs', async () => (await q.getJobs(['delayed', 'waiting'])).length === 2);
      const jobs = await q.getJobs(['delayed', 'waiting']);
      expect(jobs.map((j) => j.id).sort()).toEqual(['wake-11000', 'wake-12000']);
      expect(jobs.every((j) => j.name === 'attribution')).toBe(true);
      const off = attributionWaker(queues, { everyMs: 0 });
      off();
      await new Promise((r) => setTimeout(r, 100));
      expect((await q.getJobs(['delayed', 'waiting'])).length).toBe(2);
      await q.obliterate({ force: true });
    } finally {
      await queues.close();
      await redis.quit();
    }
  });
});

describe('feed freshness', () => {
  const ws = () => newWorkspace(srv.url, `feed fresh ${randomUUID().slice(0, 6)}`);
  const event = (wsId: string, cid: string, type: string) => ({ workspace_id: wsId, customer_id: cid, type, occurred_at: new Date() });

  test('when a transaction writing the feed stays open, then the caught-up time stays before its start, and passes its commit once it ends', async () => {
    const w = await ws();
    expect((await w.api.put('/v1/customers/ff-1', { email: 'ff@example.test' })).status).toBe(201);
    const cid = await customerId(srv.deps.db, w.id, 'ff-1');
    const consumer = `test:${randomUUID()}`;
    const consume = () => consumeFeed(srv.deps.db, consumer, 'events', async () => undefined, { now: new Date() });
    await consume();
    const first = await feedCaughtUpAt(srv.deps.db, consumer);
    expect(first).not.toBeNull();

    const slow = await other.transaction();
    try {
      await slow('events').insert(event(w.id, cid, 'slow'));
      // After its first write, so after it took its transaction id.
      const slowXidAt: Date = (await slow.raw('SELECT clock_timestamp() AS t')).rows[0].t;
      await srv.deps.db('events').insert(event(w.id, cid, 'fast'));
      await new Promise((r) => setTimeout(r, 50));
      await consume();
      const held = (await feedCaughtUpAt(srv.deps.db, consumer))!;
      expect(held.getTime()).toBeLessThanOrEqual(slowXidAt.getTime());
      expect(held.getTime()).toBeGreaterThanOrEqual(first!.getTime()); // never moved back
      await slow.commit();
    } catch (err) {
      await slow.rollback();
      throw err;
    }
    const committed = await dbNow(other);
    // Another transaction of the suite may hold the horizon for a moment: the time passes the commit once none does.
    await until('caught up past the commit', async () => {
      await consume();
      return (await feedCaughtUpAt(srv.deps.db, consumer))!.getTime() >= committed.getTime();
    });
  });
});

describe('key cache', () => {
  test('when many requests carry a key the cache does not hold, then one lookup answers them all', async () => {
    const w = await newWorkspace(srv.url, 'key herd');
    const auth = workspaceAuth(srv.deps.db);
    let lookups = 0;
    const count = (q: { sql: string }) => q.sql.includes('api_keys') && lookups++;
    srv.deps.db.on('query', count);
    try {
      const req = { headers: { authorization: `Bearer ${w.key}` } };
      const got = await Promise.all(Array.from({ length: 20 }, () => auth.authenticate(req, 'ingest')));
      expect(new Set(got.map((g) => g.workspaceId))).toEqual(new Set([w.id]));
      expect(lookups).toBe(1);
      auth.forget();
      await auth.authenticate(req, 'ingest');
      expect(lookups).toBe(2);
      await expect(auth.authenticate({ headers: { authorization: 'Bearer nope' } }, 'ingest')).rejects.toThrow('invalid API key');
    } finally {
      srv.deps.db.off('query', count);
    }
  });
});
