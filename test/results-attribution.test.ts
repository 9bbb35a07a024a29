import { ManualClock } from '../src/clock';
import { runAttribution } from '../src/results/attribution';
import { liftOf } from '../src/results/lift';
import { newWorkspace } from './helpers/api';
import { snapshotOf, snapshotSql } from '../src/results/snapshot';
import { at, customerId, DAY, HOUR, makeAutomation, makeCampaign, makeMessage } from './helpers/results-factory';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Known answers, computed by hand. The attribution feed is shared with other test files whose
 * clocks differ; its order is by transaction, not by time, so no clock matters to it.
 */
const T0 = new Date('2026-03-02T10:00:00Z');

let srv: TestServer;
let ws: Awaited<ReturnType<typeof newWorkspace>>;
const clock = new ManualClock(at(T0, 10 * DAY));

beforeAll(async () => {
  srv = await startTestServer({ clock });
  ws = await newWorkspace(srv.url);
});
afterAll(async () => srv.close());

async function customer(ext: string) {
  const res = await ws.api.put(`/v1/customers/${ext}`, { email: `${ext}@example.test` });
  expect([200, 201]).toContain(res.status);
  return customerId(srv.deps.db, ws.id, ext);
}
async function purchase(orderId: string, ext: string, when: Date, total: number) {
  const res = await ws.api.post('/v1/purchases', { orderId, customer: { externalId: ext }, occurredAt: when.toISOString(), total });
  expect(res.status).toBe(201);
}
const attribute = () => runAttribution(srv.deps.db, clock.now(), {});
const msg = (id: string) => srv.deps.db('messages').where({ id }).first();

describe('attribution', () => {
  let c1: string, c2: string;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    c1 = await makeCampaign(srv.deps.db, ws.id, { name: 'first', startedAt: T0, holdoutPercent: 10 });
    c2 = await makeCampaign(srv.deps.db, ws.id, { name: 'second', startedAt: at(T0, DAY) });
    const cust: Record<string, string> = {};
    for (const e of ['clicker', 'lasttouch', 'late', 'refunder', 'held', 'early']) cust[e] = await customer(`attr-${e}`);
    const delivered = (campaignId: string, c: string, d: Date, clickedAt?: Date) =>
      makeMessage(srv.deps.db, ws.id, { campaignId, customerId: c, status: 'delivered', sentAt: d, deliveredAt: d, clickedAt });
    ids.clickerA = await delivered(c1, cust.clicker, T0, at(T0, 2 * HOUR));
    ids.clickerB = await delivered(c2, cust.clicker, at(T0, DAY));
    ids.lastA = await delivered(c1, cust.lasttouch, T0);
    ids.lastB = await delivered(c2, cust.lasttouch, at(T0, DAY));
    ids.late = await delivered(c1, cust.late, T0);
    ids.refunder = await delivered(c1, cust.refunder, T0);
    ids.held = await makeMessage(srv.deps.db, ws.id, { campaignId: c1, customerId: cust.held, status: 'held_out', createdAt: T0 });
    ids.early = await delivered(c1, cust.early, T0);

    await purchase('o-clicker', 'attr-clicker', at(T0, 2 * DAY), 100);
    await purchase('o-last', 'attr-lasttouch', at(T0, 3 * DAY), 50);
    await purchase('o-late', 'attr-late', at(T0, 5 * DAY + HOUR), 70); // window is 5 days
    await purchase('o-refund', 'attr-refunder', at(T0, DAY), 80);
    await purchase('o-held', 'attr-held', at(T0, DAY), 40);
    await purchase('o-early', 'attr-early', at(T0, -HOUR), 30); // before the message
    await attribute();
  });

  test('when a customer clicked an older message and was merely delivered a newer one, then the clicked message converts', async () => {
    expect((await msg(ids.clickerA)).converted_at).toEqual(at(T0, 2 * DAY));
    expect((await msg(ids.clickerB)).converted_at).toBeNull();
  });

  test('when two messages were only delivered, then the last touch converts', async () => {
    expect((await msg(ids.lastA)).converted_at).toBeNull();
    expect((await msg(ids.lastB)).converted_at).toEqual(at(T0, 3 * DAY));
  });

  test('when the purchase is outside the window or before the message, then nothing converts', async () => {
    expect((await msg(ids.late)).converted_at).toBeNull();
    expect((await msg(ids.early)).converted_at).toBeNull();
  });

  test('when a held-out customer buys within the window, then the holdout row counts it and no message event is written', async () => {
    const m = await msg(ids.held);
    expect(m.converted_at).toEqual(at(T0, DAY));
    const events = await srv.deps.db('message_events').where({ message_id: ids.held });
    expect(events).toHaveLength(0);
  });

  test('when attribution runs again or the feed is replayed, then nothing is attributed twice', async () => {
    const before = await srv.deps.db('message_events').where({ workspace_id: ws.id, type: 'converted' }).count<{ count: string }[]>('* as count');
    expect(Number(before[0].count)).toBe(3);
    expect((await attribute()).converted).toBe(0);
    // Replay: rewind the shared cursor as a crash between write and commit would.
    await srv.deps.db('feed_cursors').where({ consumer: 'attribution' }).update({ last_id: 0 });
    await attribute();
    const after = await srv.deps.db('message_events').where({ workspace_id: ws.id, type: 'converted' }).count<{ count: string }[]>('* as count');
    expect(Number(after[0].count)).toBe(3);
  });

  test('when a converted purchase is refunded in part, then the report shows the net revenue and the holdout its own', async () => {
    expect((await ws.api.post('/v1/purchases/o-refund/refund', { amount: 30 })).status).toBe(200);
    const res = await ws.api.get(`/v1/campaigns/${c1}/report?groupBy=variant`);
    expect(res.status).toBe(200);
    // Treatment of c1: clickerA (100) + refunder (80 - 30); late, lastA and early did not convert.
    expect(res.body.rows).toEqual([expect.objectContaining({ group: 'default', targeted: 5, delivered: 5, clicked: 1, converted: 2, revenue: 150 })]);
    expect(res.body.holdout).toEqual({ customers: 1, converted: 1, conversionRate: 1, revenue: 40, revenuePerCustomer: 40 });
  });

  test('when the workspace window is shortened, then a purchase after it does not convert', async () => {
    expect((await ws.api.patch('/v1/settings', { attributionWindowDays: 1 })).status).toBe(200);
    const c = await customer('attr-short');
    const m = await makeMessage(srv.deps.db, ws.id, { campaignId: c2, customerId: c, status: 'delivered', sentAt: T0, deliveredAt: T0 });
    await purchase('o-short', 'attr-short', at(T0, 2 * DAY), 10);
    await attribute();
    expect((await msg(m)).converted_at).toBeNull();
    await ws.api.patch('/v1/settings', { attributionWindowDays: 5 });
  });
});

describe('report and lift', () => {
  let cid: string;
  beforeAll(async () => {
    // 10 treatment customers (3 convert) and 5 held out (1 converts), split over two cities/age bands.
    cid = await makeCampaign(srv.deps.db, ws.id, { name: 'lift', startedAt: T0, holdoutPercent: 33 });
    for (let i = 0; i < 15; i++) {
      const ext = `lift-${i}`;
      const c = await customer(ext);
      const held = i >= 10;
      await makeMessage(srv.deps.db, ws.id, {
        campaignId: cid,
        customerId: c,
        status: held ? 'held_out' : 'delivered',
        createdAt: T0,
        sentAt: held ? undefined : T0,
        deliveredAt: held ? undefined : T0,
        openedAt: !held && i < 5 ? at(T0, HOUR) : undefined,
        variant: held ? undefined : i % 2 ? 'B' : 'A',
        snapshot: { city: i < 6 ? 'Lyon' : 'Paris', age: i < 4 ? 30 : 70, gender: 'f', segmentIds: i % 3 === 0 ? ['s1', 's2'] : ['s1'] },
      });
      if ([0, 1, 2, 10].includes(i)) await purchase(`lift-o-${i}`, ext, at(T0, DAY), 10 * (i + 1));
    }
    await attribute();
  });

  test('when computed by hand, then lift and its 95% interval match the two-proportion formula', () => {
    // p1 = 3/10, p2 = 1/5, d = 0.1; se = sqrt(.3*.7/10 + .2*.8/5) = sqrt(0.053) = 0.2302172887...
    // z * se = 1.959964 * 0.2302173 = 0.4512176, so the interval is [-0.3512176, 0.5512176].
    const l = liftOf(3, 10, 1, 5);
    expect(l.conversionRate).toBeCloseTo(0.1, 12);
    expect(l.ci95![0]).toBeCloseTo(0.1 - 1.959963984540054 * 0.23021728866442676, 10);
    expect(l.ci95![1]).toBeCloseTo(0.5512176, 6);
    expect(l.relative).toBeCloseTo(0.5, 12);
    expect(liftOf(0, 0, 1, 5).ci95).toBeNull();
  });

  test('when grouped by ageBand, then rows follow the snapshot and holdout and lift are the known answers', async () => {
    const res = await ws.api.get(`/v1/campaigns/${cid}/report?groupBy=ageBand`);
    expect(res.status).toBe(200);
    expect(res.body.groupBy).toBe('ageBand');
    expect(res.body.rows.map((r: any) => [r.group, r.targeted, r.opened, r.converted, r.revenue])).toEqual([
      ['25-34', 4, 4, 3, 60],
      ['65+', 6, 1, 0, 0],
    ]);
    expect(res.body.holdout).toEqual({ customers: 5, converted: 1, conversionRate: 0.2, revenue: 110, revenuePerCustomer: 22 });
    expect(res.body.lift.conversionRate).toBeCloseTo(0.1, 12);
    expect(res.body.lift.ci95[0]).toBeCloseTo(-0.3512176, 6);
    expect(res.body.lift.ci95[1]).toBeCloseTo(0.5512176, 6);
  });

  test('when grouped by city, variant or segment, then each partition adds up', async () => {
    const city = await ws.api.get(`/v1/campaigns/${cid}/report?groupBy=city`);
    expect(city.body.rows.map((r: any) => [r.group, r.targeted, r.converted])).toEqual([['Lyon', 6, 3], ['Paris', 4, 0]]);
    const variant = await ws.api.get(`/v1/campaigns/${cid}/report?groupBy=variant`);
    expect(variant.body.rows.map((r: any) => [r.group, r.targeted, r.converted])).toEqual([['A', 5, 2], ['B', 5, 1]]);
    // s2 holds i = 0, 3, 6, 9 (i % 3 === 0); a message counts in each of its segments.
    const seg = await ws.api.get(`/v1/campaigns/${cid}/report?groupBy=segment`);
    expect(seg.body.rows.map((r: any) => [r.group, r.targeted, r.converted])).toEqual([['s1', 10, 3], ['s2', 4, 1]]);
    expect(seg.body.lift.conversionRate).toBeCloseTo(0.1, 12);
  });

  test('when groupBy is unknown or the campaign belongs to another workspace, then 400 and 404', async () => {
    const bad = await ws.api.get(`/v1/campaigns/${cid}/report?groupBy=shoeSize`);
    expect(bad.status).toBe(400);
    const other = await newWorkspace(srv.url, 'other');
    expect((await other.api.get(`/v1/campaigns/${cid}/report`)).status).toBe(404);
    expect((await ws.api.get('/v1/campaigns/not-a-uuid/report')).status).toBe(404);
  });
});

describe('automation report and snapshots', () => {
  test('when an automation sent two steps, then its report has a row per step and no holdout', async () => {
    const aid = await makeAutomation(srv.deps.db, ws.id);
    for (let i = 0; i < 3; i++) {
      const c = await customer(`auto-${i}`);
      await makeMessage(srv.deps.db, ws.id, { automationId: aid, stepIndex: 1, customerId: c, status: 'delivered', sentAt: T0, deliveredAt: T0 });
      if (i === 0) await makeMessage(srv.deps.db, ws.id, { automationId: aid, stepIndex: 3, customerId: c, status: 'delivered', sentAt: at(T0, DAY), deliveredAt: at(T0, DAY), clickedAt: at(T0, DAY + HOUR) });
    }
    await purchase('auto-o-0', 'auto-0', at(T0, 2 * DAY), 12.5);
    await attribute();
    const res = await ws.api.get(`/v1/automations/${aid}/report`);
    expect(res.status).toBe(200);
    expect(res.body.groupBy).toBe('step');
    // The purchase goes to the clicked step-3 message, not the step-1 one delivered earlier.
    expect(res.body.rows.map((r: any) => [r.group, r.targeted, r.clicked, r.converted, r.revenue])).toEqual([['1', 3, 0, 0, 0], ['3', 1, 1, 1, 12.5]]);
    expect(res.body.holdout).toBeNull();
    expect((await ws.api.get(`/v1/automations/${cid0()}/report`)).status).toBe(404);
  });

  test('when the SQL snapshot is taken of a customer, then it equals the TypeScript one', async () => {
    await ws.api.put('/v1/customers/snap-1', { email: 'snap-1@example.test', birthDate: '1990-03-03', city: 'Nantes', gender: 'm', country: 'FR' });
    const now = new Date('2026-03-02T10:00:00Z');
    const row = await srv.deps.db('customers as c').where({ 'c.workspace_id': ws.id, 'c.external_id': 'snap-1' }).first(snapshotSql(srv.deps.db, 'c', ['s1'], now).wrap('(', ') AS snap'), 'c.*');
    expect(row.snap).toEqual(snapshotOf({ ...row, birth_date: '1990-03-03' }, ['s1'], now));
    expect(row.snap.ageBand).toBe('35-44'); // 35 until 3 March, 36 after
  });
});

// An id that exists, but as a campaign: an automation report for it is a 404.
let firstCampaign = '';
const cid0 = () => firstCampaign;
beforeAll(async () => {
  firstCampaign = await makeCampaign(srv.deps.db, ws.id, { startedAt: T0 });
});
