import { ManualClock } from '../src/clock';
import * as service from '../src/campaigns/service';
import { FANOUT_BATCH, fanoutBatch, FIRST_FANOUT_BATCH, nextFanoutBatch } from '../src/campaigns/fanout';
import { bucket, pickVariant } from './helpers/buckets';
import { variantBounds } from '../src/campaigns/fanout-sql';
import { ageAt, ageBandOf } from '../src/results/snapshot';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

jest.setTimeout(60_000);

// The UTC date is the 28th of February, so a leap-day birthday has not come yet this year. The
// clock is far ahead: the rows written here are requested for dispatch "now", so the sweepers of
// other test files (the wall clock) never find them stale, and nothing here is ever sent.
const clock = new ManualClock(new Date('2094-02-28T23:30:00Z'));
let server: TestServer;
const sent: Array<{ api: { post(p: string): Promise<unknown> }; id: string }> = [];

beforeAll(async () => {
  server = await startTestServer({ clock });
});
afterAll(async () => {
  // Cancelled, so that no later test file's worker picks up these queued rows.
  for (const c of sent) await c.api.post(`/v1/campaigns/${c.id}/cancel`);
  await server.close();
});

describe('fan-out computed in SQL', () => {
  test('when a campaign has a holdout, variants and an A/B share, then each customer lands where the JS buckets say, and the snapshot matches ageBandOf', async () => {
    const ws = await newWorkspace(server.url, 'fanout shop', { timezone: 'UTC' });
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    const births = ['2076-02-28', '2076-02-29', '2076-03-01', '2029-02-28', '2029-03-01', '2058-06-15', null];
    const n = 90;
    for (let i = 0; i < n; i++) {
      const body = { email: `f${i}@fo.example`, emailConsent: 'subscribed', city: i % 3 ? 'Gent' : 'Riga', gender: i % 2 ? 'male' : 'female', birthDate: births[i % births.length] ?? undefined };
      expect((await ws.api.put(`/v1/customers/fo${i}`, body)).status).toBe(201);
    }
    const seg = async (name: string, definition: unknown) => (await ws.api.post('/v1/segments', { name, definition })).body.id as string;
    const gent = await seg('gent', { field: 'city', op: 'eq', value: 'Gent' });
    const men = await seg('men', { field: 'gender', op: 'eq', value: 'male' });
    const tpl = async (name: string) => (await ws.api.post('/v1/templates', { name, channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id as string;
    const [ta, tb, tc] = [await tpl('A'), await tpl('B'), await tpl('C')];
    const created = await ws.api.post('/v1/campaigns', {
      name: 'Buckets', channel: 'email', templateId: ta, segmentIds: [gent, men], holdoutPercent: 20,
      variants: [{ templateId: ta, weight: 1 }, { templateId: tb, weight: 2 }, { templateId: tc, weight: 3 }],
      abTest: { testPercent: 50, metric: 'clicks', decideAfterHours: 1 },
    });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    sent.push({ api: ws.api, id });
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    await service.runFanout(server.deps, id);

    const c = await server.deps.db('campaigns').where({ id }).first('variants');
    const rows = await server.deps.db('messages as m').join('customers as cu', 'cu.id', 'm.customer_id').where('m.campaign_id', id)
      .select('m.customer_id', 'm.status', 'm.variant', 'm.template_id', 'm.send_after', 'm.snapshot', 'cu.external_id', 'cu.city', 'cu.gender')
      .select(server.deps.db.raw("m.send_after = 'infinity' AS awaiting"));
    // The audience: Gent or men (Riga women are out).
    const expected = Array.from({ length: n }, (_, i) => i).filter((i) => i % 3 !== 0 || i % 2 === 1);
    expect(rows).toHaveLength(expected.length);
    const seen = { held: 0, waiting: 0, variant: 0 };
    for (const r of rows) {
      const cid = String(r.customer_id);
      const i = Number(String(r.external_id).slice(2));
      if (bucket(id, cid, 'holdout') * 100 < 20) {
        expect(r.status).toBe('held_out');
        seen.held++;
      } else if (bucket(id, cid, 'abtest') * 100 >= 50) {
        expect(r).toMatchObject({ status: 'queued', variant: null, awaiting: true });
        seen.waiting++;
      } else {
        const v = pickVariant(c.variants, bucket(id, cid, 'variant'))!;
        expect(r).toMatchObject({ status: 'queued', variant: v.key, template_id: v.templateId, send_after: null });
        seen.variant++;
      }
      const birth = births[i % births.length] ?? null;
      expect(r.snapshot.ageBand).toBe(ageBandOf(ageAt(birth, clock.now())));
      expect(r.snapshot).toMatchObject({ city: r.city, gender: r.gender });
      expect([...r.snapshot.segmentIds].sort()).toEqual([...(r.city === 'Gent' ? [gent] : []), ...(r.gender === 'male' ? [men] : [])].sort());
    }
    expect(Math.min(seen.held, seen.waiting, seen.variant)).toBeGreaterThan(0);
    // The leap-day birthday of 2076 is not 18 yet on 28 February 2094.
    expect(ageBandOf(ageAt('2076-02-29', clock.now()))).toBe('under 18');
  });

  // Without quiet hours a batch is taken by LIMIT in the INSERT; with them it is read first and
  // written as an id range: both across several batches, with addresses shared between batches.
  test.each([
    ['taken by LIMIT', null],
    ['read first, written by id', { start: '22:00', end: '07:00' }],
  ])('when the audience spans several batches (%s), then each customer gets one row and an address taken in an earlier batch is a duplicate', async (_, quietHours) => {
    const ws = await newWorkspace(server.url, 'batches shop', { timezone: 'UTC' });
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St', quietHours });
    const n = 2 * FANOUT_BATCH + 2000;
    const shared = 1000; // the last `shared` customers reuse the addresses of the first ones
    await server.deps.db.raw(
      `INSERT INTO customers (workspace_id, external_id, email, city, email_consent)
       SELECT ?, 'b' || g, 'b' || ((g - 1) % ?::int + 1) || '@batch.example', 'Batchville', 'subscribed' FROM generate_series(1, ?::int) g`,
      [ws.id, n - shared, n],
    );
    const segment = (await ws.api.post('/v1/segments', { name: 'bv', definition: { field: 'city', op: 'eq', value: 'Batchville' } })).body.id;
    const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id;
    const id = (await ws.api.post('/v1/campaigns', { name: 'Big', channel: 'email', templateId: tpl, segmentIds: [segment] })).body.id;
    sent.push({ api: ws.api, id });
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    await service.runFanout(server.deps, id);

    const db = server.deps.db;
    const rows = await db('messages as m').join('customers as c', 'c.id', 'm.customer_id').where('m.campaign_id', id)
      .select(db.raw("count(*)::int AS n, count(DISTINCT m.customer_id)::int AS customers, count(DISTINCT m.address) FILTER (WHERE m.status = 'queued')::int AS addresses"))
      .select(db.raw("count(*) FILTER (WHERE m.skip_reason = 'duplicate' AND substr(c.external_id, 2)::int > ?)::int AS later_dups", [n - shared]))
      .select(db.raw("count(*) FILTER (WHERE m.skip_reason = 'duplicate')::int AS dups, count(*) FILTER (WHERE m.quiet_deferred)::int AS deferred"));
    expect(rows[0]).toEqual({ n, customers: n, addresses: n - shared, dups: shared, later_dups: shared, deferred: quietHours ? n - shared : 0 });
    const c = await db('campaigns').where({ id }).first('fanout_cursor', 'fanned_out_at');
    expect(c.fanned_out_at).not.toBeNull();
    expect(c.fanout_cursor).toBe(String(await db('customers').where({ workspace_id: ws.id }).max('id').first().then((r: any) => r.max)));
  });

  test('when held-out customers reuse addresses of earlier batches, then a held-out row whose address an earlier batch queued is a duplicate too', async () => {
    // Batches are written without probing each address (the unique index stops a taken one, and
    // the batch is written again probing); held-out rows are not in that index and always probe.
    const ws = await newWorkspace(server.url, 'held shop', { timezone: 'UTC' });
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    const n = FANOUT_BATCH + 4000;
    const shared = 2000;
    await server.deps.db.raw(
      `INSERT INTO customers (workspace_id, external_id, email, city, email_consent)
       SELECT ?, 'h' || g, 'h' || ((g - 1) % ?::int + 1) || '@held.example', 'Heldham', 'subscribed' FROM generate_series(1, ?::int) g`,
      [ws.id, n - shared, n],
    );
    const segment = (await ws.api.post('/v1/segments', { name: 'hh', definition: { field: 'city', op: 'eq', value: 'Heldham' } })).body.id;
    const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id;
    const id = (await ws.api.post('/v1/campaigns', { name: 'Held', channel: 'email', templateId: tpl, segmentIds: [segment], holdoutPercent: 50 })).body.id;
    sent.push({ api: ws.api, id });
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    await service.runFanout(server.deps, id);
    const db = server.deps.db;
    const { rows } = await db.raw(
      `SELECT substr(c.external_id, 2)::int AS k, m.status, m.skip_reason FROM messages m JOIN customers c ON c.id = m.customer_id WHERE m.campaign_id = ? ORDER BY 1`,
      [id],
    );
    const byK = new Map((rows as Array<{ k: number; status: string; skip_reason: string | null }>).map((r) => [r.k, r]));
    expect(byK.size).toBe(n);
    let held = 0;
    let dups = 0;
    for (let k = n - shared + 1; k <= n; k++) {
      const earlier = byK.get(k - (n - shared))!;
      const later = byK.get(k)!;
      if (earlier.status === 'queued') {
        expect({ k, later: later.skip_reason }).toEqual({ k, later: 'duplicate' });
        dups++;
      } else expect({ k, later: later.skip_reason }).toEqual({ k, later: later.status === 'held_out' ? 'held_out' : null });
      if (later.status === 'held_out') held++;
    }
    // Both cases occurred: duplicates, and held-out later customers whose earlier twin was held out too.
    expect(dups).toBeGreaterThan(500);
    expect(held).toBeGreaterThan(200);
  });

  test('when a fan-out starts, then its first batch is FIRST_FANOUT_BATCH rows and the rest follows from its checkpoint', async () => {
    const ws = await newWorkspace(server.url, 'ramp shop', { timezone: 'UTC' });
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    const n = FIRST_FANOUT_BATCH * 5 + 7;
    await server.deps.db.raw(
      `INSERT INTO customers (workspace_id, external_id, email, city, email_consent)
       SELECT ?, 'r' || g, 'r' || g || '@ramp.example', 'Rampton', 'subscribed' FROM generate_series(1, ?::int) g`,
      [ws.id, n],
    );
    const segment = (await ws.api.post('/v1/segments', { name: 'rt', definition: { field: 'city', op: 'eq', value: 'Rampton' } })).body.id;
    const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id;
    const id = (await ws.api.post('/v1/campaigns', { name: 'Ramp', channel: 'email', templateId: tpl, segmentIds: [segment] })).body.id;
    sent.push({ api: ws.api, id });
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    const db = server.deps.db;
    const first = await fanoutBatch(db, id, clock.now(), FIRST_FANOUT_BATCH);
    expect({ done: first?.done, inserted: first?.inserted, due: first?.due.length }).toEqual({ done: false, inserted: FIRST_FANOUT_BATCH, due: FIRST_FANOUT_BATCH });
    expect(nextFanoutBatch(FIRST_FANOUT_BATCH)).toBeGreaterThan(FIRST_FANOUT_BATCH);
    expect(await service.runFanout(server.deps, id)).toBe(n - FIRST_FANOUT_BATCH);
    const [{ rows, customers }] = await db('messages').where({ campaign_id: id }).select(db.raw('count(*)::int AS rows, count(DISTINCT customer_id)::int AS customers'));
    expect({ rows, customers }).toEqual({ rows: n, customers: n });
  });

  test('when weights are uneven, then variantBounds split [0, 1) exactly where pickVariant does', () => {
    const variants = [1, 2, 3, 7].map((weight, i) => ({ key: String.fromCharCode(65 + i), templateId: `t${i}`, weight }));
    const bounds = variantBounds(variants.map((v) => v.weight));
    // width_bucket in SQL: the number of bounds at or below u, plus one.
    const sqlPick = (u: number) => variants[bounds.filter((b) => b <= u).length]!;
    const us = [0, ...bounds, ...bounds.map((b) => b - Number.EPSILON), ...bounds.map((b) => b + Number.EPSILON), 0.999999999, 0.5];
    for (const u of us) expect(sqlPick(u).key).toBe(pickVariant(variants, u)!.key);
  });
});
