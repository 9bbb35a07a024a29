import { request } from 'node:http';
import type { Worker } from 'bullmq';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { startImportWorker } from '../workers/import-worker';
import { processImport } from '../src/imports/service';
import { QUEUE_NAMES } from '../src/queues';
import { EXTERNAL_ID_PROBE } from '../src/customers/identity';
import { bindings } from '../src/db';

let srv: TestServer;
let worker: Worker;
beforeAll(async () => {
  srv = await startTestServer({ env: { IMPORT_MAX_BYTES: String(2 * 1024 * 1024) } });
  worker = await startImportWorker(srv.deps);
});
afterAll(async () => {
  await worker.close();
  await srv.close();
});

type Ws = Awaited<ReturnType<typeof newWorkspace>>;
const csv = (lines: string[]) => lines.join('\n') + '\n';

async function upload(ws: Ws, body: string | Buffer, query: string, type = 'text/csv') {
  const res = await fetch(`${srv.url}/v1/imports?${query}`, { method: 'POST', headers: { authorization: `Bearer ${ws.key}`, 'content-type': type }, body });
  return { status: res.status, body: (await res.json()) as any };
}

async function settle(ws: Ws, id: string) {
  for (let i = 0; i < 400; i++) {
    const res = await ws.api.get(`/v1/imports/${id}`);
    if (res.body.status === 'done' || res.body.status === 'failed') return res.body;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('import did not finish');
}

async function importFile(ws: Ws, body: string | Buffer, query: string) {
  const up = await upload(ws, body, query);
  expect(up.status).toBe(202);
  expect(up.body).toEqual({ id: expect.any(String), kind: expect.any(String), status: 'queued' });
  return settle(ws, up.body.id);
}

const HEADER = 'orderId,customerExternalId,occurredAt,sku,name,category,quantity,unitPrice';
const PURCHASES = csv([
  HEADER,
  'A-1,c1,2024-01-02T10:00:00Z,sku-1,Tea,food,2,3.50', // line 2
  'B-1,c2,2024-01-03T10:00:00Z,sku-2,Mug,home,1,12.00', // line 3
  'C-1,c1,2024-01-04T10:00:00Z,sku-3,Pot,home,-1,20.00', // line 4: bad, so C-1 is skipped whole
  'A-1,c1,2024-01-09T10:00:00Z,sku-4,Cake,food,1,4.25', // line 5: A-1's second item; occurredAt stays line 2's
  'C-1,c1,2024-01-04T10:00:00Z,sku-5,Lid,home,1,2.00', // line 6
  'D-1,,2024-01-05T10:00:00Z,sku-6,Pen,office,1,1.00', // line 7: no customer
]);

describe('POST /v1/imports (purchases)', () => {
  test('when item rows of one order are apart, then one purchase with every item, first row occurredAt; a bad row skips its purchase whole', async () => {
    const ws = await newWorkspace(srv.url);
    const done = await importFile(ws, PURCHASES, 'kind=purchases');
    expect(done).toMatchObject({ status: 'done', rowsRead: 6, accepted: 2, duplicates: 0, rejected: 3, progress: 1 });
    expect(done.errors).toEqual([
      { line: 4, error: expect.stringContaining('quantity') },
      { line: 6, error: expect.stringContaining('line 4') },
      { line: 7, error: expect.stringContaining('no customer') },
    ]);
    const c1 = await ws.api.get('/v1/customers/c1');
    expect(c1.body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 11.25, firstPurchaseAt: '2024-01-02T10:00:00.000Z', topCategory: 'food' });
    const rows = await srv.deps.db('purchases').where({ workspace_id: ws.id }).orderBy('order_id');
    expect(rows.map((r) => r.order_id)).toEqual(['A-1', 'B-1']);
    const items = await srv.deps.db('purchase_items').where({ purchase_id: rows[0].id }).orderBy('id');
    expect(items.map((i) => i.sku)).toEqual(['sku-1', 'sku-4']);
    // Nothing of the file is left behind once done.
    expect(await srv.deps.db('import_rows').where({ import_id: done.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
    expect(await srv.deps.db('import_chunks').where({ import_id: done.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when cells hold tabs, backslashes, a quoted line break and quotes, then they are stored as written (staging by COPY escapes them)', async () => {
    const ws = await newWorkspace(srv.url);
    const name = 'a\tb \\N c\\d "q"\nline two';
    const body = csv([HEADER, `T-1,c\\1,2024-01-02T10:00:00Z,sku\t1,"${name.replace(/"/g, '""')}",food,1,1.00`, `T-2,c2,2024-01-02T10:00:00Z,sku-2,\\N,food,x,1.00`]);
    const done = await importFile(ws, body, 'kind=purchases');
    expect(done).toMatchObject({ status: 'done', accepted: 1, rejected: 1, errors: [{ line: 4, error: 'quantity: "x" is not a whole number' }] });
    const [p] = await srv.deps.db('purchases').where({ workspace_id: ws.id });
    const [item] = await srv.deps.db('purchase_items').where({ purchase_id: p.id });
    expect({ sku: item.sku, name: item.name }).toEqual({ sku: 'sku\t1', name });
    expect((await srv.deps.db('customers').where({ id: p.customer_id }).first()).external_id).toBe('c\\1');
  });

  test('when a CRLF file has CRLF and a lone CR inside quoted cells, then later rows are still reported by their own line', async () => {
    const ws = await newWorkspace(srv.url);
    const rows = [
      HEADER, // line 1
      'A-1,c1,2024-01-02T10:00:00Z,sku-1,"Tea\r\nfor two",food,1,3.50', // lines 2-3
      'B-1,c2,2024-01-03T10:00:00Z,sku-2,Mug,home,x,12.00', // line 4: bad
      'C-1,c3,2024-01-04T10:00:00Z,sku-3,"Pot\rlid",home,1,20.00', // lines 5-6
      'D-1,c4,2024-01-05T10:00:00Z,sku-4,"Pen\r\nred\r\nfine",office,y,1.00', // lines 7-9: bad, reported at its first
      'E-1,c5,2024-01-06T10:00:00Z,sku-5,Cup,home,z,2.00', // line 10: bad
    ];
    const done = await importFile(ws, rows.join('\r\n') + '\r\n', 'kind=purchases');
    expect(done).toMatchObject({ status: 'done', accepted: 2, rejected: 3 });
    expect(done.errors.map((e: any) => e.line)).toEqual([4, 7, 10]);
  });

  test('when the same file is imported twice, then the second changes nothing and counts duplicates', async () => {
    const ws = await newWorkspace(srv.url);
    await importFile(ws, PURCHASES, 'kind=purchases');
    const before = await ws.api.get('/v1/customers/c1');
    const again = await importFile(ws, PURCHASES, 'kind=purchases');
    expect(again).toMatchObject({ status: 'done', accepted: 0, duplicates: 2, rejected: 3 });
    expect((await ws.api.get('/v1/customers/c1')).body.stats).toEqual(before.body.stats);
    expect(await srv.deps.db('purchase_items').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '3' }]);
  });

  test('when history is imported, then stats equal those of the same purchases posted to the batch API', async () => {
    const viaImport = await newWorkspace(srv.url);
    const viaApi = await newWorkspace(srv.url);
    await importFile(viaImport, PURCHASES, 'kind=purchases');
    const posted = await viaApi.api.post('/v1/purchases/batch', {
      purchases: [
        { orderId: 'A-1', customer: { externalId: 'c1' }, occurredAt: '2024-01-02T10:00:00Z', total: 11.25, items: [{ sku: 'sku-1', name: 'Tea', category: 'food', quantity: 2, unitPrice: 3.5 }, { sku: 'sku-4', name: 'Cake', category: 'food', quantity: 1, unitPrice: 4.25 }] },
        { orderId: 'B-1', customer: { externalId: 'c2' }, occurredAt: '2024-01-03T10:00:00Z', total: 12, items: [{ sku: 'sku-2', name: 'Mug', category: 'home', quantity: 1, unitPrice: 12 }] },
      ],
    });
    expect(posted.body.accepted).toBe(2);
    for (const id of ['c1', 'c2']) {
      const a = (await viaImport.api.get(`/v1/customers/${id}`)).body.stats;
      const b = (await viaApi.api.get(`/v1/customers/${id}`)).body.stats;
      expect(a).toEqual(b);
    }
  });

  test('when the file uses its own headers, then mapping, dateFormat and timezone read it (UCI Online Retail layout)', async () => {
    const ws = await newWorkspace(srv.url);
    const file = csv([
      'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country',
      '536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom',
      '536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom',
      'C536379,D,Discount,-1,2010-12-01 09:41:00,27.50,14527.0,United Kingdom',
      '536414,22139,,56,2010-12-01 11:52:00,0.00,,United Kingdom',
      '536366,22633,HAND WARMER,6,01/12/2010 08:28,1.85,17850.0,United Kingdom',
    ]);
    const mapping = encodeURIComponent(JSON.stringify({ InvoiceNo: 'orderId', StockCode: 'sku', Description: 'name', Quantity: 'quantity', InvoiceDate: 'occurredAt', UnitPrice: 'unitPrice', CustomerID: 'customerExternalId' }));
    const done = await importFile(ws, file, `kind=purchases&mapping=${mapping}&dateFormat=${encodeURIComponent('yyyy-MM-dd HH:mm:ss')}&timezone=Europe/London`);
    expect(done).toMatchObject({ status: 'done', rowsRead: 5, accepted: 1, rejected: 3 });
    expect(done.errors.map((e: any) => e.line)).toEqual([4, 5, 6]);
    expect(done.errors[2].error).toMatch(/occurredAt: "01\/12\/2010 08:28" is not a date in the format yyyy-MM-dd HH:mm:ss/);
    const p = await srv.deps.db('purchases').where({ workspace_id: ws.id }).first();
    expect(p.order_id).toBe('536365');
    expect(new Date(p.occurred_at).toISOString()).toBe('2010-12-01T08:26:00.000Z'); // London in winter is UTC
    expect(Number(p.total)).toBe(35.64);
  });
});

describe('planner statistics', () => {
  test('when a workspace is unknown to the statistics, then its customers are still probed by (workspace_id, external_id)', async () => {
    // Planned with the workspace's value, a workspace the last ANALYZE had not seen was estimated
    // at ~1 customer and probed through any (workspace_id, ...) index: a walk of the workspace per
    // look-up (seen on the bench database, whose few workspaces are all in the statistics; this
    // shared test database plans either form well). The probe hides the value ($n, an InitPlan
    // parameter) and both of its columns are index conditions.
    const ws = await newWorkspace(srv.url);
    const db = srv.deps.db;
    await db.raw('ANALYZE customers');
    await db.raw(`INSERT INTO customers (workspace_id, external_id) SELECT ?, 'p-' || g FROM generate_series(1, 3000) g`, [ws.id]);
    const plan = await db.transaction(async (trx) => {
      const { rows } = await trx.raw(`EXPLAIN (FORMAT JSON) ${EXTERNAL_ID_PROBE}`, bindings([['p-1', 'p-2', 'p-3'], ws.id]));
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    const scans = [...plan.matchAll(/"Index Name": ?"([^"]+)"/g)].map((m) => m[1]);
    expect(scans).toHaveLength(1);
    expect(['customers_workspace_id_external_id_unique', 'customers_search_external_id']).toContain(scans[0]);
    expect(plan).toMatch(/"Index Cond": ?"\(\(workspace_id = \$\d+\) AND \(external_id = x\.v\)\)"/);
  });
});

describe('POST /v1/imports: bad input', () => {
  test('when a quote is never closed, then the import fails with the line and nothing is applied', async () => {
    const ws = await newWorkspace(srv.url);
    const done = await importFile(ws, csv([HEADER, 'A-1,c1,2024-01-02T10:00:00Z,sku-1,Tea,food,2,3.50', 'B-1,c2,2024-01-03T10:00:00Z,"sku-2,Mug,home,1,12.00']), 'kind=purchases');
    expect(done.status).toBe('failed');
    expect(done.failure).toMatch(/not valid CSV at line \d/);
    expect(await srv.deps.db('purchases').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
    expect(await srv.deps.db('customers').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when the file is Latin-1, then 400 unless encoding says so; a UTF-8 BOM is fine', async () => {
    const ws = await newWorkspace(srv.url);
    const latin1 = Buffer.from(csv(['externalId,firstName', 'k1,Zoë']), 'latin1');
    const refused = await upload(ws, latin1, 'kind=customers');
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/not valid utf-8 near line 2/);
    expect(await srv.deps.db('imports').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
    const ok = await importFile(ws, latin1, 'kind=customers&encoding=windows-1252');
    expect(ok).toMatchObject({ status: 'done', accepted: 1 });
    expect((await ws.api.get('/v1/customers/k1')).body.firstName).toBe('Zoë');
    const bom = await importFile(ws, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(csv(['externalId,firstName', 'k2,Ann']))]), 'kind=customers');
    expect(bom).toMatchObject({ status: 'done', accepted: 1 });
  });

  test('when a required column is missing, or only a header comes, then 422 and no import', async () => {
    const ws = await newWorkspace(srv.url);
    const missing = await upload(ws, csv(['orderId,customerExternalId,sku,quantity,unitPrice', 'A,c,s,1,1']), 'kind=purchases');
    expect(missing.status).toBe(422);
    expect(missing.body.error.details).toEqual([{ path: 'header', message: 'missing required column occurredAt' }]);
    const unknownField = await upload(ws, csv(['a,b', '1,2']), `kind=customers&mapping=${encodeURIComponent('{"a":"externalId","b":"shoeSize"}')}`);
    expect(unknownField.status).toBe(422);
    const headerOnly = await upload(ws, csv([HEADER, '', '']), 'kind=purchases');
    expect(headerOnly.status).toBe(422);
    expect(headerOnly.body.error.message).toBe('the file has a header and no rows');
    const badQuery = await upload(ws, csv([HEADER]), 'kind=orders');
    expect(badQuery.status).toBe(400);
    const json = await upload(ws, '{}', 'kind=customers', 'application/json');
    expect(json.status).toBe(415);
    expect(await srv.deps.db('imports').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when a row has the wrong width or a date in another format, then that row is rejected by line', async () => {
    const ws = await newWorkspace(srv.url);
    const done = await importFile(ws, csv([HEADER, 'A-1,c1,2024-01-02T10:00:00Z,sku-1,Tea,food,2,3.50', 'B-1,c2,2024-01-03T10:00:00Z,sku-2,Mug,home,1', 'E-1,c3,03/01/2024,sku-2,Mug,home,1,1.00']), 'kind=purchases');
    expect(done).toMatchObject({ status: 'done', accepted: 1, rejected: 2 });
    expect(done.errors).toEqual([
      { line: 3, error: 'the row has 7 fields; the header has 8' },
      { line: 4, error: expect.stringContaining('occurredAt: "03/01/2024" is not a date in ISO-8601') },
    ]);
  });

  test('when the body is over the limit, then 413 (by Content-Length, or while streaming) and nothing is kept', async () => {
    const ws = await newWorkspace(srv.url);
    // Declared too large: refused before the body is read.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${srv.url}/v1/imports?kind=customers`, { method: 'POST', headers: { authorization: `Bearer ${ws.key}`, 'content-type': 'text/csv', 'content-length': String(201 * 1024 * 1024) } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('externalId\n');
    });
    expect(status).toBe(413);
    // Chunked (no length): counted as it streams (this server's limit is 2 MB).
    const big = 'externalId,firstName\n' + 'x1234567,abcdefghijklmnopqrstuvwxyz\n'.repeat(80000);
    const res = await fetch(`${srv.url}/v1/imports?kind=customers`, {
      method: 'POST', headers: { authorization: `Bearer ${ws.key}`, 'content-type': 'text/csv' }, duplex: 'half',
      body: new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(big)); c.close(); } }),
    } as RequestInit);
    expect(res.status).toBe(413);
    expect(await srv.deps.db('imports').where({ workspace_id: ws.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when the key is an ingest key, then 403 before the body is read', async () => {
    const ws = await newWorkspace(srv.url);
    const key = (await ws.api.post('/v1/api-keys', { name: 'till', scope: 'ingest' })).body.key;
    const res = await fetch(`${srv.url}/v1/imports?kind=customers`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, body: 'externalId\nx\n' });
    expect(res.status).toBe(403);
  });
});

describe('customers and lists', () => {
  test('when customers are imported, then they are upserted with consent and attributes, and a re-import counts duplicates', async () => {
    const ws = await newWorkspace(srv.url);
    const file = csv(['External ID,email,first_name,emailConsent,attributes.tier,phone', 'u1,Ann@Example.com,Ann,subscribed,gold,', 'u2,bad-email,Bob,,,', 'u3,,Cy,,,+1 512 555 0100', 'u4,,Di,,,12']);
    const done = await importFile(ws, file, 'kind=customers');
    expect(done).toMatchObject({ status: 'done', rowsRead: 4, accepted: 2, duplicates: 0, rejected: 2 });
    expect(done.errors.map((e: any) => e.line)).toEqual([3, 5]);
    expect((await ws.api.get('/v1/customers/u1')).body).toMatchObject({ email: 'ann@example.com', firstName: 'Ann', emailConsent: 'subscribed', attributes: { tier: 'gold' } });
    expect((await ws.api.get('/v1/customers/u3')).body.phone).toBe('+15125550100');
    expect(await importFile(ws, file, 'kind=customers')).toMatchObject({ accepted: 0, duplicates: 2 });
    const list = await ws.api.get('/v1/imports?limit=1');
    expect(list.body.data).toHaveLength(1);
    expect(list.body.nextCursor).toEqual(expect.any(String));
    expect((await ws.api.get(`/v1/imports?limit=1&cursor=${list.body.nextCursor}`)).body.data[0].id).not.toBe(list.body.data[0].id);
    expect((await ws.api.get('/v1/imports/not-a-uuid')).status).toBe(404);
  });
});

describe('a worker that dies mid-import', () => {
  test('when a resumed job looks up ranges applied past its resume point, then a range without a lane covers every lane', async () => {
    const { coveredKeys } = await import('../src/imports/repo');
    const got = await coveredKeys(srv.deps.db, ['A-1', 'B-1', 'C-1', 'E-1', 'F-1'], [['A-1', 'B-1'], ['E-1', 'F-1', 2], ['F-1', 'F-1', 3]]);
    expect([...got].map(([k, lanes]) => [k, [...lanes].sort()]).sort()).toEqual([['A-1', [-1]], ['B-1', [-1]], ['E-1', [2]], ['F-1', [2, 3]]]);
  });

  test('when the job stops after a page and runs again, then it resumes: every purchase once, stats as a clean import', async () => {
    const lines = [HEADER];
    // 4,000 orders of 3 rows each, each order's rows spread over the file.
    for (let k = 0; k < 3; k++) for (let o = 0; o < 4000; o++) lines.push(`O-${o},cust-${o % 300},2024-02-01T10:00:00Z,s${k},n,cat${k},1,1.50`);
    const file = csv(lines);
    const crashed = await newWorkspace(srv.url);
    const clean = await newWorkspace(srv.url);
    // Uploaded but not run by the worker: paused, so that this test drives the job itself.
    await worker.pause();
    try {
      const up = await upload(crashed, file, 'kind=purchases');
      const die = async (applied: number) => {
        if (applied > 0) throw new Error('worker killed');
      };
      await expect(processImport(srv.deps.db, srv.deps.logger, up.body.id, () => new Date(), { afterPage: die })).rejects.toThrow('worker killed');
      const mid = (await crashed.api.get(`/v1/imports/${up.body.id}`)).body;
      expect(mid.status).toBe('running');
      expect(mid.accepted).toBeGreaterThan(0);
      expect(mid.accepted).toBeLessThan(4000);
      expect(mid.progress).toBeGreaterThan(0.5);
      // Batches committed past the resume point, each with its lane: the resumed job skips them lane by lane.
      const ranges = (await srv.deps.db('imports').where({ id: up.body.id }).first()).done_ranges as unknown[][];
      expect(ranges.length).toBeGreaterThan(0);
      for (const r of ranges) expect(r).toEqual([expect.any(String), expect.any(String), expect.any(Number)]);
      await processImport(srv.deps.db, srv.deps.logger, up.body.id, () => new Date());
    } finally {
      worker.resume();
    }
    const cleanDone = await importFile(clean, file, 'kind=purchases');
    // A large purchase import refits the predictions (API.md), as a job on the predictions queue.
    expect(await srv.deps.queues.get(QUEUE_NAMES.predictions).getJob(`fit-${clean.id}-import-${cleanDone.id}`)).toBeTruthy();
    const done = (await crashed.api.get('/v1/imports')).body.data[0];
    expect(done).toMatchObject({ status: 'done', accepted: 4000, duplicates: 0, rejected: 0 });
    expect(await srv.deps.db('purchases').where({ workspace_id: crashed.id }).count({ n: '*' })).toEqual([{ n: '4000' }]);
    expect(await srv.deps.db('purchase_items').where({ workspace_id: crashed.id }).count({ n: '*' })).toEqual([{ n: '12000' }]);
    for (const c of ['cust-0', 'cust-299']) {
      expect((await crashed.api.get(`/v1/customers/${c}`)).body.stats).toEqual((await clean.api.get(`/v1/customers/${c}`)).body.stats);
    }
  });
});
