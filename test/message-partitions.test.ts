import { listPartitions, maintainMessageEventPartitions, monthOf } from '../src/messages/partitions';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * message_events by month (migrations/0021, src/messages/partitions.ts): months ahead are created,
 * rows that landed in the default partition move into their month with their feed position, old
 * months are detached and dropped past retention, and deleting a message still deletes its events.
 * messages by the period of their send: test/messages-partitioned.test.ts.
 * The retention case drops every partition before 2041 in the test database (other files' rows are
 * then in the default partition or gone, which they do not read back); the last test restores
 * this month and the next three.
 */
jest.setTimeout(60_000);

let server: TestServer;
const db = () => server.deps.db;
let ws: { id: string };
let messageId: string;

beforeAll(async () => {
  server = await startTestServer();
  ws = await newWorkspace(server.url, 'partitions shop');
  const [c] = await db()('customers').insert({ workspace_id: ws.id, external_id: 'p-1', email: 'p1@example.com' }).returning('id');
  const [m] = await db()('messages').insert({ workspace_id: ws.id, customer_id: c.id, channel: 'email', address: 'p1@example.com', status: 'sent', sent_at: new Date() }).returning('id');
  messageId = String(m.id);
});
afterAll(() => server.close());

const event = async (createdAt: string) => {
  const [e] = await db()('message_events').insert({ workspace_id: ws.id, message_id: messageId, type: 'opened', occurred_at: createdAt, created_at: createdAt, data: {} }).returning(['id']);
  return String(e.id);
};
const whereIs = async (id: string) => (await db().raw('SELECT tableoid::regclass::text AS part, xid::text AS xid FROM message_events WHERE id = ?', [id])).rows[0] as { part: string; xid: string } | undefined;

describe('message_events partitioned by month', () => {
  test('when migrated, then message_events is partitioned by created_at, with a default partition and this month and the next three', async () => {
    const { rows } = await db().raw("SELECT pg_get_partkeydef('message_events'::regclass) AS key");
    expect(rows[0].key).toBe('RANGE (created_at)');
    const names = (await listPartitions(db())).map((p) => p.name);
    for (let i = 0; i <= 3; i++) expect(names).toContain(monthOf(new Date(), i).name);
    const { rows: def } = await db().raw("SELECT to_regclass('message_events_default')::text AS t");
    expect(def[0].t).toBe('message_events_default');
  });

  test('when a row lands in a month without a partition, then it waits in the default partition and moves into its month, feed position kept, once that month is created', async () => {
    const id = await event('2040-02-10T12:00:00Z');
    const before = await whereIs(id);
    expect(before?.part).toBe('message_events_default');
    const changes = await maintainMessageEventPartitions(db(), new Date('2040-01-20T00:00:00Z'), { aheadMonths: 2, retentionMonths: 0 });
    expect(changes).toEqual({ created: ['message_events_y2040m01', 'message_events_y2040m02', 'message_events_y2040m03'], dropped: [] });
    expect(await whereIs(id)).toEqual({ part: 'message_events_y2040m02', xid: before!.xid });
    // A second run (another worker, the next tick) changes nothing.
    expect(await maintainMessageEventPartitions(db(), new Date('2040-01-20T00:00:00Z'), { aheadMonths: 2, retentionMonths: 0 })).toEqual({ created: [], dropped: [] });
    // The new partition has the keys and indexes of the others.
    const { rows } = await db().raw("SELECT indexdef FROM pg_indexes WHERE tablename = 'message_events_y2040m02' ORDER BY 1");
    expect(rows.map((r: { indexdef: string }) => r.indexdef.replace(/^.* USING /, '')).sort()).toEqual(['btree (id, workspace_id, created_at)', 'btree (message_id)', 'btree (xid, id)']);
  });

  test('when months pass retention, then their partitions are detached and dropped and newer ones stay', async () => {
    const old = await event('2040-03-05T00:00:00Z');
    const kept = await event('2041-06-05T00:00:00Z'); // in the default partition until its month is made
    const changes = await maintainMessageEventPartitions(db(), new Date('2042-03-15T00:00:00Z'), { aheadMonths: 0, retentionMonths: 13 });
    // Cutoff: 2041-02-01; every month that ended by then goes.
    expect(changes.created).toEqual(['message_events_y2042m03']);
    expect(changes.dropped).toEqual(expect.arrayContaining(['message_events_y2040m01', 'message_events_y2040m02', 'message_events_y2040m03']));
    expect((await listPartitions(db())).filter((p) => p.to <= new Date('2041-02-01T00:00:00Z'))).toEqual([]);
    expect(await whereIs(old)).toBeUndefined();
    expect((await whereIs(kept))?.part).toBe('message_events_default');
  });

  test('when a message is deleted, then its events go from every partition (messages\' delete trigger, migrations/0022)', async () => {
    await maintainMessageEventPartitions(db(), new Date(), { aheadMonths: 3, retentionMonths: 0 });
    const recent = await event(new Date().toISOString());
    expect((await whereIs(recent))?.part).toBe(monthOf(new Date(), 0).name);
    expect(Number((await db()('message_events').where({ message_id: messageId }).count({ n: '*' }))[0]!.n)).toBeGreaterThan(0);
    await db()('messages').where({ id: messageId }).delete();
    expect(await db()('message_events').where({ message_id: messageId }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when a bad retention is configured, then boot stops naming it', async () => {
    const { loadConfig } = await import('../src/config');
    expect(() => loadConfig({ HARK_ADMIN_TOKEN: 'x'.repeat(20), MESSAGE_EVENTS_RETENTION_MONTHS: '-1' })).toThrow(/MESSAGE_EVENTS_RETENTION_MONTHS/);
    expect(() => loadConfig({ HARK_ADMIN_TOKEN: 'x'.repeat(20), MESSAGES_RETENTION_MONTHS: 'soon' })).toThrow(/MESSAGES_RETENTION_MONTHS/);
    expect(loadConfig({ HARK_ADMIN_TOKEN: 'x'.repeat(20) }).MESSAGES_RETENTION_MONTHS).toBe(25);
  });
});
