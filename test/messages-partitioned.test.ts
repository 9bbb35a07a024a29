import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { ManualClock } from '../src/clock';
import { fanoutBatch } from '../src/campaigns/fanout';
import { enqueueAutomationMessage, enqueueAutomationMessages } from '../src/messages/outbox';
import { listPartitions, maintainMessagePartitions, monthOf } from '../src/messages/partitions';
import { claimForSend, markSent } from '../src/messages/repo';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * messages partitioned by the period of their send (migrations/0022, src/messages/partitions.ts):
 * a campaign's rows are in the month its send started and an enrollment's in the month it entered,
 * whatever the clock says when each row is written, so the unique keys (which must hold the
 * partition key) still give one row per customer, address and step across a month boundary; the
 * hot path prunes to one partition; maintenance moves, keeps and drops months with their events.
 * The clock is far ahead (2061): rows written here are never stale for other files' sweepers.
 */
jest.setTimeout(60_000);

const clock = new ManualClock(new Date('2061-01-31T23:58:00Z'));
let server: TestServer;
const db = () => server.deps.db;

beforeAll(async () => {
  server = await startTestServer({ clock });
});
afterAll(() => server.close());

const rowsOf = (where: Record<string, unknown>) =>
  db()('messages').where(where).orderBy('id').select('id', 'customer_id', 'address', 'status', 'skip_reason', 'created_at', db().raw('period::text AS period'), db().raw('tableoid::regclass::text AS part'));

/** The statement a repo function sends, EXPLAINed instead of run: the partitions of messages it touches. */
async function partitionsTouched(run: (conn: Knex) => Promise<unknown>): Promise<string[]> {
  let plan = '';
  const conn = { raw: async (sql: string, b: unknown) => {
    const { rows } = await db().raw(`EXPLAIN (COSTS OFF) ${sql}`, b as Knex.RawBinding[]);
    plan = (rows as Array<Record<string, string>>).map((r) => r['QUERY PLAN']).join('\n');
    return { rows: [] };
  } } as unknown as Knex;
  await run(conn);
  return [...new Set(plan.match(/\bmessages_(y\d{4}m\d{2}|default)\b/g) ?? [])].sort();
}

let campaignId = '';
let wsId = '';

describe('messages partitioned by the period of their send', () => {
  test('when migrated, then messages is partitioned by period, with a default partition and this month and the next three at fillfactor 50, and keyed by (id, workspace_id, period)', async () => {
    expect((await db().raw("SELECT pg_get_partkeydef('messages'::regclass) AS key")).rows[0].key).toBe('RANGE (period)');
    const names = (await listPartitions(db(), 'messages')).map((p) => p.name);
    for (let i = 0; i <= 3; i++) expect(names).toContain(monthOf(new Date(), i, 'messages').name);
    const { rows } = await db().raw("SELECT reloptions FROM pg_class WHERE relname IN ('messages_default', ?) ORDER BY relname", [monthOf(new Date(), 0, 'messages').name]);
    expect(rows.map((r: { reloptions: string[] }) => r.reloptions)).toEqual([['fillfactor=50'], ['fillfactor=50']]);
    const { rows: pk } = await db().raw("SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conname = 'messages_pkey'");
    expect(pk[0].def).toBe('PRIMARY KEY (id, workspace_id, period)');
  });

  test('when a campaign fan-out crosses midnight at a month end, then every row is in the month its send started, one per customer and per address, and a batch replayed a month later is refused by the unique keys', async () => {
    await maintainMessagePartitions(db(), new Date('2061-01-15T00:00:00Z'), { aheadMonths: 2, retentionMonths: 0 });
    const ws = await newWorkspace(server.url, 'month-end shop', { timezone: 'UTC' });
    wsId = ws.id;
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    // Seven customers; the fifth shares the first one's address and is written after midnight.
    for (let i = 0; i < 7; i++) {
      const email = i === 4 ? 'me0@example.com' : `me${i}@example.com`;
      expect((await ws.api.put(`/v1/customers/me${i}`, { email, emailConsent: 'subscribed', city: 'Partcity' })).status).toBe(201);
    }
    const seg = (await ws.api.post('/v1/segments', { name: 'all', definition: { field: 'city', op: 'eq', value: 'Partcity' } })).body.id;
    const tpl = (await ws.api.post('/v1/templates', { name: 'T', channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id;
    campaignId = (await ws.api.post('/v1/campaigns', { name: 'Month end', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;
    expect((await ws.api.post(`/v1/campaigns/${campaignId}/send`)).status).toBe(202);

    const first = await fanoutBatch(db(), campaignId, clock.now(), 3);
    expect(first).toMatchObject({ inserted: 3, done: false, period: '2061-01-01' });
    clock.set('2061-02-01T00:02:00Z');
    for (let r = await fanoutBatch(db(), campaignId, clock.now(), 3); r && !r.done; r = await fanoutBatch(db(), campaignId, clock.now(), 3));

    const rows = await rowsOf({ campaign_id: campaignId });
    expect(rows).toHaveLength(7);
    expect(new Set(rows.map((r) => String(r.customer_id))).size).toBe(7);
    // Written on both sides of midnight, all in January's partition (February's exists).
    expect(rows.filter((r) => new Date(r.created_at) >= new Date('2061-02-01T00:00:00Z')).length).toBe(4);
    expect(new Set(rows.map((r) => `${r.period} ${r.part}`))).toEqual(new Set(['2061-01-01 messages_y2061m01']));
    expect(rows.filter((r) => r.address === 'me0@example.com' && r.status === 'queued')).toHaveLength(1);
    expect(rows.filter((r) => r.skip_reason === 'duplicate')).toHaveLength(1);

    // A month later the same batches again (a lost checkpoint): the keys with period refuse them.
    clock.set('2061-03-02T10:00:00Z');
    await db()('campaigns').where({ id: campaignId }).update({ fanout_cursor: null, fanned_out_at: null });
    await expect(fanoutBatch(db(), campaignId, clock.now(), 3)).rejects.toThrow(/messages_(y2061m01_)?campaign/);
    expect(await rowsOf({ campaign_id: campaignId })).toHaveLength(7);
    await db()('campaigns').where({ id: campaignId }).update({ fanned_out_at: clock.now(), status: 'cancelled' });
    await db()('messages').where({ campaign_id: campaignId, status: 'queued', period: '2061-01-01' }).update({ status: 'cancelled' });
  });

  test("when an enrollment's steps are written across months, then all land in the month it entered, and a step written again later is the same row", async () => {
    const [cust] = await db()('customers').insert({ workspace_id: wsId, external_id: 'walker', email: 'walker@example.com', email_consent: 'subscribed' }).returning('id');
    const tpl = (await db()('templates').where({ workspace_id: wsId }).first('id')).id;
    const [auto] = await db()('automations').insert({ workspace_id: wsId, name: 'A', trigger_type: 'purchase', steps: JSON.stringify([]), enabled: false }).returning('id');
    const [enr] = await db()('automation_enrollments')
      .insert({ workspace_id: wsId, automation_id: auto.id, customer_id: cust.id, entered_at: new Date('2061-01-20T08:00:00Z'), state: 'active' })
      .returning('id');
    const step = (stepIndex: number, now: string) => ({ workspaceId: wsId, automationId: auto.id, enrollmentId: String(enr.id), stepIndex, customerId: String(cust.id), channel: 'email' as const, templateId: tpl, now: new Date(now) });
    const a = await db().transaction((trx) => enqueueAutomationMessage(trx, step(0, '2061-01-20T08:00:00Z')));
    const b = await db().transaction((trx) => enqueueAutomationMessage(trx, step(1, '2061-02-10T08:00:00Z')));
    const [c] = await db().transaction((trx) => enqueueAutomationMessages(trx, [step(2, '2061-03-03T08:00:00Z')]));
    // Step 1 again in March (a replayed walk): the row written in February.
    const again = await db().transaction((trx) => enqueueAutomationMessage(trx, step(1, '2061-03-05T08:00:00Z')));
    const [again2] = await db().transaction((trx) => enqueueAutomationMessages(trx, [step(1, '2061-04-05T08:00:00Z')]));
    expect(again.messageId).toBe(b.messageId);
    expect(again2!.messageId).toBe(b.messageId);
    const rows = await rowsOf({ enrollment_id: enr.id });
    expect(rows.map((r) => String(r.id))).toEqual([a.messageId, b.messageId, c!.messageId]);
    expect(new Set(rows.map((r) => `${r.period} ${r.part}`))).toEqual(new Set(['2061-01-01 messages_y2061m01']));
    await db()('messages').where({ enrollment_id: enr.id, status: 'queued' }).update({ status: 'cancelled' });
  });

  test("when the dispatch claim and its outcome write carry the job's period, then each touches one partition of messages; without it, every one", async () => {
    const ids = (await rowsOf({ campaign_id: campaignId })).map((r) => String(r.id));
    const claim = await partitionsTouched((conn) => claimForSend(conn, ids, randomUUID(), clock.now(), ['2061-01-01']));
    expect(claim).toEqual(['messages_y2061m01']);
    const sent = await partitionsTouched((conn) => markSent(conn, ids.map((id) => ({ id, channel: 'email', providerId: 'p', period: '2061-01-01' })), clock.now()));
    expect(sent).toEqual(['messages_y2061m01']);
    const unpruned = await partitionsTouched((conn) => claimForSend(conn, ids, randomUUID(), clock.now()));
    expect(unpruned).toEqual(expect.arrayContaining(['messages_default', 'messages_y2061m01', 'messages_y2061m02', monthOf(new Date(), 0, 'messages').name.slice(0)]));
  });
});

describe('messages partitions: maintenance and what goes with a message', () => {
  const message = async (period: string, extra: Record<string, unknown> = {}) => {
    const [m] = await db()('messages').insert({ workspace_id: wsId, channel: 'email', address: 'old@example.com', status: 'delivered', sent_at: new Date(period), period, ...extra }).returning('id');
    const id = String(m.id);
    await db()('message_events').insert({ workspace_id: wsId, message_id: id, type: 'opened', occurred_at: new Date(), data: {} });
    await db()('inbox_messages').insert({ workspace_id: wsId, message_id: id, channel: 'email', to_address: 'old@example.com', from_address: 'shop@example.com', text: 'hi', received_at: new Date() });
    return id;
  };
  const left = async (id: string) => ({
    part: (await db().raw('SELECT tableoid::regclass::text AS part FROM messages WHERE id = ?', [id])).rows[0]?.part as string | undefined,
    events: Number((await db()('message_events').where({ message_id: id }).count({ n: '*' }))[0]!.n),
    inbox: Number((await db()('inbox_messages').where({ message_id: id }).count({ n: '*' }))[0]!.n),
  });

  test('when maintenance runs, then rows waiting in the default partition move into their new month with their events and inbox copies, and months past retention go with theirs unless a message in them is not sent yet', async () => {
    const waiting = await message('2043-05-01');
    expect(await left(waiting)).toEqual({ part: 'messages_default', events: 1, inbox: 1 });
    const made = await maintainMessagePartitions(db(), new Date('2043-04-10T00:00:00Z'), { aheadMonths: 1, retentionMonths: 0 });
    expect(made).toEqual({ created: ['messages_y2043m04', 'messages_y2043m05'], dropped: [] });
    // The move deletes from the default partition itself, which does not fire messages' delete trigger.
    expect(await left(waiting)).toEqual({ part: 'messages_y2043m05', events: 1, inbox: 1 });
    const { rows } = await db().raw("SELECT reloptions FROM pg_class WHERE relname = 'messages_y2043m05'");
    expect(rows[0].reloptions).toEqual(['fillfactor=50']);

    await maintainMessagePartitions(db(), new Date('2001-03-10T00:00:00Z'), { aheadMonths: 0, retentionMonths: 0 });
    const old = await message('2001-03-01');
    const oldInDefault = await message('2001-06-01');
    expect((await left(old)).part).toBe('messages_y2001m03');
    expect((await left(oldInDefault)).part).toBe('messages_default');
    const current = await message(monthOf(new Date(), 0, 'messages').from);
    // Not sent yet (an enrollment older than retention, still walking): its month waits for it.
    // send_after infinity: no sweeper of another test file ever takes it.
    await maintainMessagePartitions(db(), new Date('2001-04-10T00:00:00Z'), { aheadMonths: 0, retentionMonths: 0 });
    const unsent = await message('2001-04-01', { status: 'queued', sent_at: null, send_after: 'infinity' });
    const unsentInDefault = await message('2001-07-01', { status: 'queued', sent_at: null, send_after: 'infinity' });

    const dropped = await maintainMessagePartitions(db(), new Date(), { aheadMonths: 3, retentionMonths: 25 });
    expect(dropped.dropped).toContain('messages_y2001m03');
    expect(dropped.dropped).not.toContain(monthOf(new Date(), 0, 'messages').name);
    expect(dropped.pending).toEqual(['messages_y2001m04']);
    expect(await left(old)).toEqual({ part: undefined, events: 0, inbox: 0 });
    expect(await left(oldInDefault)).toEqual({ part: undefined, events: 0, inbox: 0 });
    expect(await left(current)).toEqual({ part: monthOf(new Date(), 0, 'messages').name, events: 1, inbox: 1 });
    expect(await left(waiting)).toEqual({ part: 'messages_y2043m05', events: 1, inbox: 1 });
    expect(await left(unsent)).toEqual({ part: 'messages_y2001m04', events: 1, inbox: 1 });
    expect(await left(unsentInDefault)).toEqual({ part: 'messages_default', events: 1, inbox: 1 });

    // Once out (cancelled here), they go at the next run.
    await db()('messages').whereIn('id', [unsent, unsentInDefault]).update({ status: 'cancelled' });
    const later = await maintainMessagePartitions(db(), new Date(), { aheadMonths: 3, retentionMonths: 25 });
    expect(later).toEqual({ created: [], dropped: ['messages_y2001m04'] });
    expect(await left(unsent)).toEqual({ part: undefined, events: 0, inbox: 0 });
    expect(await left(unsentInDefault)).toEqual({ part: undefined, events: 0, inbox: 0 });
  });

  test('when a campaign is deleted, then its messages go from their partition with their events and inbox copies', async () => {
    const ids = (await rowsOf({ campaign_id: campaignId })).map((r) => String(r.id));
    for (const id of ids.slice(0, 2)) {
      await db()('message_events').insert({ workspace_id: wsId, message_id: id, type: 'delivered', occurred_at: new Date(), data: {} });
      await db()('inbox_messages').insert({ workspace_id: wsId, message_id: id, channel: 'email', to_address: 'x@example.com', from_address: 'shop@example.com', text: 'hi', received_at: new Date() });
    }
    await db()('campaigns').where({ id: campaignId }).delete();
    expect(await db()('messages').whereIn('id', ids).count({ n: '*' })).toEqual([{ n: '0' }]);
    expect(await db()('message_events').whereIn('message_id', ids).count({ n: '*' })).toEqual([{ n: '0' }]);
    expect(await db()('inbox_messages').whereIn('message_id', ids).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test("when a customer is erased, then their messages stay without an address, in their partition, and the messages' inbox copies go", async () => {
    const ws = await newWorkspace(server.url, 'erasure partitions');
    expect((await ws.api.put('/v1/customers/gone', { email: 'gone@example.com', emailConsent: 'subscribed' })).status).toBe(201);
    const cust = await db()('customers').where({ workspace_id: ws.id, external_id: 'gone' }).first('id');
    const [m] = await db()('messages').insert({ workspace_id: ws.id, customer_id: cust.id, channel: 'email', address: 'gone@example.com', status: 'delivered', period: '2061-01-01' }).returning('id');
    await db()('inbox_messages').insert({ workspace_id: ws.id, message_id: m.id, channel: 'email', to_address: 'gone@example.com', from_address: 'shop@example.com', text: 'hi', received_at: new Date() });
    expect((await ws.api.delete('/v1/customers/gone')).status).toBe(204);
    const row = await db().raw('SELECT address, tableoid::regclass::text AS part FROM messages WHERE id = ?', [m.id]);
    expect(row.rows).toEqual([{ address: null, part: 'messages_y2061m01' }]);
    expect(await db()('inbox_messages').where({ message_id: m.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });
});
