import type { AddressInfo } from 'node:net';
import { execFileSync, spawn, ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { buildApp } from '../src/app';
import type { Deps } from '../src/deps';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb, migrateLatest } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { resolveHeader, rowConverter, StagedRow } from '../src/imports/rows';
import { assemble } from '../src/imports/service';
import type { PurchaseInput } from '../src/purchases/schema';
import { Bench, BenchContext, Metric, recreateBenchDatabase } from './harness';
import { makePurchase, poster, toBody } from './ingest-load';
import { procStatusKb } from './proc';

/**
 * npm run bench -- import [--scale small|full]
 * CSV imports against the batch API on the same rows, on its own database (hark_bench_import):
 *  - retail: the 30,000-row UCI Online Retail sample (test/fixtures/data), with its own headers
 *    (mapping), its date format, London time; cancellations and rows without a customer are rejected.
 *  - generated: 2,000,000 item rows (1,999,998: whole orders; 199,998 at --scale small) of 3-item orders whose rows stand
 *    apart (every order's first item, then every second, then every third), 50,000 customers.
 * Each import is timed from the first byte uploaded to `finishedAt`, so upload, parse, staging
 * and apply are all in it. The baseline is the same purchases (built by the import's own row
 * reader, so the very same content) POSTed to /v1/purchases/batch, 1000 a request, 4 concurrent
 * clients, into a fresh workspace: rows/s both. The import worker runs in a child process of its
 * own (as ROLE=worker would), whose peak RSS (VmHWM) is reported, beside its RSS when idle.
 */
const BENCH_DB = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_import';
const ROOT = resolve(__dirname, '..');
const SCALES = { small: { rows: 200_000, customers: 20_000 }, full: { rows: 2_000_000, customers: 50_000 } } as const;
const RETAIL_MAPPING = { InvoiceNo: 'orderId', StockCode: 'sku', Description: 'name', Quantity: 'quantity', InvoiceDate: 'occurredAt', UnitPrice: 'unitPrice', CustomerID: 'customerExternalId' };
const RETAIL_QUERY = `kind=purchases&mapping=${encodeURIComponent(JSON.stringify(RETAIL_MAPPING))}&dateFormat=${encodeURIComponent('yyyy-MM-dd HH:mm:ss')}&timezone=Europe/London`;

/**
 * The worker child runs compiled JavaScript, as production does (npm start): under
 * @swc-node/register the compiler alone held ~100 MB of the process. Compiled by tsc into
 * dist/bench-import/ (gitignored) with the build's settings.
 */
function compileWorkerChild(ctx: BenchContext): string {
  const out = join(ROOT, 'dist', 'bench-import');
  const tsconfig = join(ROOT, 'dist', 'tsconfig.bench-import.json');
  mkdirSync(dirname(tsconfig), { recursive: true });
  writeFileSync(tsconfig, JSON.stringify({ extends: '../tsconfig.build.json', compilerOptions: { outDir: './bench-import', rootDir: '..', sourceMap: false }, include: ['../src', '../migrations', '../workers', '../bench/import-worker-child.ts'] }));
  const started = Date.now();
  execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], { cwd: ROOT, stdio: 'inherit' });
  ctx.log(`compiled the worker in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return join(out, 'bench', 'import-worker-child.js');
}

function startWorkerChild(script: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  // IMPORT_WORKER_NODE_ARGS: extra node flags for the worker child (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof), for profiling.
  const extra = (process.env.IMPORT_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...extra, script], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && res(child));
    child.once('exit', (code) => rej(new Error(`import worker exited ${code}`)));
  });
}

/** Streams a file (or buffer) as the body of POST /v1/imports. */
function uploadFile(base: string, key: string, query: string, path: string): Promise<{ status: number; body: any }> {
  return new Promise((res, rej) => {
    const req = http.request(`${base}/v1/imports?${query}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv', 'content-length': statSync(path).size } }, (r) => {
      let text = '';
      r.on('data', (d) => (text += d));
      r.on('end', () => res({ status: r.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', rej);
    createReadStream(path).pipe(req);
  });
}

async function waitDone(base: string, key: string, id: string, ctx: BenchContext): Promise<any> {
  let lastLog = 0;
  for (;;) {
    const r = await fetch(`${base}/v1/imports/${id}`, { headers: { authorization: `Bearer ${key}` } });
    const j = (await r.json()) as any;
    if (j.status === 'done' || j.status === 'failed') return j;
    if (Date.now() - lastLog > 10_000) {
      ctx.log(`  import ${j.status} ${(j.progress * 100).toFixed(0)}% rows ${j.rowsRead} accepted ${j.accepted}`);
      lastLog = Date.now();
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The batch API's rate on these purchases: 1000 a request, 4 requests in flight. */
async function postBatches(base: string, key: string, purchases: () => Iterable<unknown>): Promise<{ ms: number; accepted: number }> {
  const post = poster(base, key, 4);
  const started = performance.now();
  let accepted = 0;
  const it = purchases()[Symbol.iterator]();
  const next = () => {
    const batch: unknown[] = [];
    for (let r = it.next(); !r.done; r = it.next()) {
      batch.push(r.value);
      if (batch.length === 1000) break;
    }
    return batch;
  };
  await Promise.all(
    [0, 1, 2, 3].map(async () => {
      for (let b = next(); b.length; b = next()) {
        const r = await post('/v1/purchases/batch', { purchases: b });
        if (r.status !== 200) throw new Error(`batch answered ${r.status}: ${r.text.slice(0, 200)}`);
        accepted += (JSON.parse(r.text) as { accepted: number }).accepted;
      }
    }),
  );
  return { ms: performance.now() - started, accepted };
}

/** The retail sample's purchases as the import reads them (same reader), for the API baseline. */
function retailPurchases(path: string): PurchaseInput[] {
  const records = parseCsv(readFileSync(path), { relax_column_count: true }) as string[][];
  const opts = { mapping: RETAIL_MAPPING, dateFormat: 'yyyy-MM-dd HH:mm:ss', timezone: 'Europe/London', encoding: 'utf-8' as const };
  const convert = rowConverter('purchases', resolveHeader('purchases', records[0]!, RETAIL_MAPPING), opts);
  const byOrder = new Map<string, StagedRow[]>();
  records.slice(1).forEach((rec, i) => {
    const row = convert(i + 2, rec);
    if (row.key === null) return;
    byOrder.set(row.key, [...(byOrder.get(row.key) ?? []), row]);
  });
  return [...byOrder.values()].flatMap((rows) => {
    const a = assemble(rows);
    return 'purchase' in a ? [a.purchase] : [];
  });
}

function writeGenerated(path: string, rows: number, customers: number): Promise<number> {
  const orders = Math.floor(rows / 3);
  const out = createWriteStream(path);
  return new Promise((res, rej) => {
    out.on('error', rej);
    out.write('orderId,customerExternalId,occurredAt,sku,name,category,brand,quantity,unitPrice,currency,channel\n');
    let k = 0;
    let i = 0;
    let written = 0;
    const pump = () => {
      while (k < 3) {
        if (i >= orders) {
          k++;
          i = 0;
          continue;
        }
        const p = makePurchase('gen', i, customers);
        const it = p.items[k]!;
        i++;
        written++;
        if (!out.write(`${p.orderId},${p.customer},${p.occurredAt},${it.sku},${it.name},${it.category},${it.brand},${it.quantity},${it.unitPrice.toFixed(2)},USD,pos\n`)) return void out.once('drain', pump);
      }
      out.end(() => res(orders));
    };
    pump();
  });
}

export const bench: Bench = {
  description: 'CSV import vs the batch API on the same rows; import worker peak RSS',
  async run(ctx) {
    const scale = SCALES[ctx.scale];
    await recreateBenchDatabase(BENCH_DB);
    const config = loadConfig({ ...process.env, DATABASE_URL: BENCH_DB, HARK_ADMIN_TOKEN: process.env.HARK_ADMIN_TOKEN ?? 'bench-operator-token-0123456789', HARK_SIGNING_SECRET: 'bench-signing-secret-0123456789abcdef', LOG_LEVEL: 'silent', API_RATE_PER_MINUTE: '0' });
    const db = createDb(config.DATABASE_URL, 20);
    await migrateLatest(db);
    const redis = createRedis(config.REDIS_URL);
    const prefix = `hark-bench-import-${process.pid}`;
    const deps: Deps = { config, db, redis, queues: new Queues(redis, prefix), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
    const server = buildApp(deps).listen(0);
    await new Promise((r) => server.once('listening', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const dir = mkdtempSync(join(tmpdir(), 'hark-bench-import-'));
    const child = await startWorkerChild(compileWorkerChild(ctx), { ...process.env, NODE_ENV: 'development', DATABASE_URL: BENCH_DB, REDIS_URL: config.REDIS_URL, QUEUE_PREFIX: prefix, HARK_ADMIN_TOKEN: config.HARK_ADMIN_TOKEN, HARK_SIGNING_SECRET: config.HARK_SIGNING_SECRET, LOG_LEVEL: 'warn' });
    await new Promise((r) => setTimeout(r, 1000));
    const idleRssMb = procStatusKb(child.pid!, 'VmRSS') / 1024;
    const metrics: Metric[] = [];
    try {
      const ws = async (name: string) => {
        const r = await poster(base, config.HARK_ADMIN_TOKEN, 1)('/v1/workspaces', { name });
        return (JSON.parse(r.text) as { apiKey: string }).apiKey;
      };
      const analyze = () => db.raw('ANALYZE customers, customer_stats, purchases, purchase_items, import_rows');
      const measure = async (label: string, path: string, query: string, purchases: () => Iterable<unknown>, rows: number) => {
        await analyze();
        const apiKey = await ws(`${label} api`);
        const api = await postBatches(base, apiKey, purchases);
        const apiRate = rows / (api.ms / 1000);
        ctx.log(`${label}: batch API ${api.accepted} purchases in ${(api.ms / 1000).toFixed(1)} s (${apiRate.toFixed(0)} rows/s)`);
        await analyze();
        const importKey = await ws(`${label} import`);
        const started = Date.now();
        const up = await uploadFile(base, importKey, query, path);
        if (up.status !== 202) throw new Error(`upload answered ${up.status}: ${JSON.stringify(up.body)}`);
        ctx.log(`${label}: uploaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
        const done = await waitDone(base, importKey, up.body.id, ctx);
        const ms = Date.parse(done.finishedAt) - started;
        const rate = rows / (ms / 1000);
        ctx.log(`${label}: import ${done.status} rows ${done.rowsRead} accepted ${done.accepted} rejected ${done.rejected} in ${(ms / 1000).toFixed(1)} s (${rate.toFixed(0)} rows/s)`);
        if (done.accepted !== api.accepted) throw new Error(`${label}: the import accepted ${done.accepted} purchases, the API ${api.accepted}`);
        metrics.push({ name: `${label} import rate`, value: rate, unit: 'rows/s', baseline: { name: 'batch API, same rows', value: apiRate }, target: { text: 'ratio >= 0.5', met: rate / apiRate >= 0.5 } });
      };

      const retail = resolve(ROOT, 'test/fixtures/data/online-retail-sample.csv');
      const retailRows = readFileSync(retail, 'utf8').trimEnd().split('\n').length - 1;
      const retailList = retailPurchases(retail);
      await measure('retail 30k', retail, RETAIL_QUERY, () => retailList, retailRows);

      const gen = join(dir, 'generated.csv');
      const orders = await writeGenerated(gen, scale.rows, scale.customers);
      const genRows = orders * 3;
      ctx.log(`generated ${genRows} rows (${orders} orders, ${(statSync(gen).size / 1048576).toFixed(0)} MB)`);
      function* generated() {
        for (let i = 0; i < orders; i++) yield toBody(makePurchase('gen', i, scale.customers));
      }
      await measure(`generated ${Math.round(genRows / 1000)}k`, gen, 'kind=purchases', generated, genRows);

      const peak = procStatusKb(child.pid!, 'VmHWM') / 1024;
      metrics.push({ name: 'import worker idle RSS', value: idleRssMb, unit: 'MB' });
      metrics.push({ name: 'import worker peak RSS', value: peak, unit: 'MB', target: { text: '< 200 MB', met: peak < 200 } });
      return metrics;
    } finally {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
      await new Promise((r) => server.close(r));
      server.closeAllConnections();
      await deps.queues.close();
      await db.destroy();
      await redis.quit();
    }
  },
};
