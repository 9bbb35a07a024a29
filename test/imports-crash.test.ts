import { ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { TEST_DATABASE_URL } from './helpers/env';

const ROOT = resolve(__dirname, '..');
let srv: TestServer;
const children: ChildProcess[] = [];
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await srv.close();
});

function worker(): Promise<ChildProcess> {
  const env = {
    ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'silent', DATABASE_URL: TEST_DATABASE_URL, REDIS_URL: srv.deps.config.REDIS_URL,
    QUEUE_PREFIX: srv.deps.queues.prefix, HARK_ADMIN_TOKEN: srv.deps.config.HARK_ADMIN_TOKEN,
  };
  const child = spawn(process.execPath, ['-r', '@swc-node/register', 'test/helpers/import-child.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && res(child));
    child.once('exit', (code, signal) => rej(new Error(`worker exited ${code ?? signal}: ${err}`)));
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 120_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await fn();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('an import worker killed mid-import', () => {
  test('when the worker is SIGKILLed while applying, then another takes the job over and every purchase is stored and counted once', async () => {
    const ws = await newWorkspace(srv.url);
    const ORDERS = 15000;
    const lines = ['orderId,customerExternalId,occurredAt,sku,category,quantity,unitPrice'];
    for (let k = 0; k < 3; k++) for (let o = 0; o < ORDERS; o++) lines.push(`K-${o},cust-${o % 1000},2024-02-01T10:00:00Z,s${k},cat${k},1,2.00`);
    const first = await worker();
    const up = await fetch(`${srv.url}/v1/imports?kind=purchases`, { method: 'POST', headers: { authorization: `Bearer ${ws.key}`, 'content-type': 'text/csv' }, body: lines.join('\n') });
    expect(up.status).toBe(202);
    const { id } = (await up.json()) as { id: string };
    // Killed once part of the purchases are stored.
    const mid = await until('the apply phase', async () => {
      const r = await ws.api.get(`/v1/imports/${id}`);
      return r.body.accepted > 0 && r.body;
    });
    first.kill('SIGKILL');
    expect(mid.accepted).toBeLessThan(ORDERS);
    await worker();
    const done = await until('the import to finish', async () => {
      const r = await ws.api.get(`/v1/imports/${id}`);
      return (r.body.status === 'done' || r.body.status === 'failed') && r.body;
    });
    expect(done).toMatchObject({ status: 'done', rowsRead: 3 * ORDERS, accepted: ORDERS, duplicates: 0, rejected: 0, progress: 1 });
    expect(await srv.deps.db('purchases').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: String(ORDERS) }]);
    expect(await srv.deps.db('purchase_items').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: String(3 * ORDERS) }]);
    const stats = await srv.deps.db('customer_stats').where({ workspace_id: ws.id }).sum({ n: 'purchase_count', spent: 'total_spent' });
    expect(stats).toEqual([{ n: String(ORDERS), spent: (ORDERS * 6).toFixed(2) }]);
  }, 180_000);
});
