import { randomUUID } from 'node:crypto';
import { createDb, Db } from '../src/db';
import { consumeFeed } from '../src/feed';
import { newWorkspace } from './helpers/api';
import { TEST_DATABASE_URL } from './helpers/env';
import { startTestServer, TestServer } from './helpers/server';

/**
 * The in-database change feed against the real Postgres: a row whose transaction commits after
 * later rows were already consumed must still be consumed, once.
 */
jest.setTimeout(60_000);

let server: TestServer;
let other: Db;
beforeAll(async () => {
  server = await startTestServer();
  other = createDb(TEST_DATABASE_URL, 2);
});
afterAll(async () => {
  await other.destroy();
  await server.close();
});

async function customerOf(wsId: string, api: Awaited<ReturnType<typeof newWorkspace>>['api']) {
  expect((await api.put('/v1/customers/f-1', { email: 'f@feed.example' })).status).toBe(201);
  return (await server.deps.db('customers').where({ workspace_id: wsId, external_id: 'f-1' }).first('id')).id;
}

const event = (wsId: string, customerId: string, type: string) => ({ workspace_id: wsId, customer_id: customerId, type, occurred_at: new Date() });

describe('consumeFeed', () => {
  test('when a slow transaction commits its row after later rows were consumed, then the slow row is still consumed, and every row once', async () => {
    const ws = await newWorkspace(server.url, 'feed shop');
    const cid = await customerOf(ws.id, ws.api);
    const consumer = `test:${randomUUID()}`;
    const seen: string[] = [];
    const mine = new Set<string>();
    // Far past any time-based lag: only the ordering can keep the slow row from being skipped.
    const consume = () => consumeFeed(server.deps.db, consumer, 'events', async (_trx, rows) => void seen.push(...rows.map((r) => String(r.id)).filter((id) => mine.has(id))), { now: new Date(Date.now() + 3600_000) });

    const slow = await other.transaction();
    try {
      const [s] = await slow('events').insert(event(ws.id, cid, 'slow')).returning('id');
      mine.add(String(s.id));
      // Committed after the slow row took its id: a larger id, visible at once.
      const [fast] = await server.deps.db('events').insert(event(ws.id, cid, 'fast')).returning('id');
      mine.add(String(fast.id));
      expect(Number(fast.id)).toBeGreaterThan(Number(s.id));
      await consume();
      await slow.commit();
    } catch (err) {
      await slow.rollback();
      throw err;
    }
    await consume();
    await consume();
    expect(seen.sort()).toEqual([...mine].sort());
  });

  test('when a transaction of another database on the cluster stays open, then it does not hold this feed back', async () => {
    const ws = await newWorkspace(server.url, 'feed shop 2');
    const cid = await customerOf(ws.id, ws.api);
    const elsewhere = new URL(TEST_DATABASE_URL);
    elsewhere.pathname = '/postgres';
    const foreign = createDb(elsewhere.toString(), 1);
    const open = await foreign.transaction();
    try {
      await open.raw('SELECT pg_current_xact_id()'); // takes a transaction id, as a write would
      const [e] = await server.deps.db('events').insert(event(ws.id, cid, 'after')).returning('id');
      const seen: string[] = [];
      const consumer = `test:${randomUUID()}`;
      for (let i = 0; i < 3 && !seen.includes(String(e.id)); i++) {
        await consumeFeed(server.deps.db, consumer, 'events', async (_trx, rows) => void seen.push(...rows.map((r) => String(r.id))), { now: new Date() });
      }
      expect(seen).toContain(String(e.id));
    } finally {
      await open.rollback();
      await foreign.destroy();
    }
  });
});
