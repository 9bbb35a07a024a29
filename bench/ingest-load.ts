import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { inChild, serveInChild } from './fork';

/**
 * The ingest benchmark's load generator. It runs in a child process of its own (see `runLoad`):
 * in the server's process, building JSON bodies and parsing responses took event-loop turns from
 * the server under test and was measured as the server's latency.
 */

export interface Gen {
  orderId: string;
  customer: string;
  occurredAt: string;
  items: { sku: string; name: string; category: string; brand: string; quantity: number; unitPrice: number }[];
  total: number;
}

const CATEGORIES = ['shoes', 'care', 'bags', 'socks', 'coats', 'hats', 'belts', 'gloves'];
const BASE_TIME = Date.parse('2026-01-01T00:00:00Z');

/** Deterministic purchases: customers drawn from a fixed pool so that most hit an existing customer. */
export function makePurchase(prefix: string, i: number, customers: number): Gen {
  const items = [0, 1, 2].map((k) => {
    const n = (i * 7 + k * 13) % 97;
    return { sku: `SKU-${n}`, name: `Item ${n}`, category: CATEGORIES[n % CATEGORIES.length]!, brand: `Brand ${n % 11}`, quantity: 1 + (n % 3), unitPrice: 5 + (n % 40) + 0.99 };
  });
  const total = Math.round(items.reduce((s, it) => s + it.quantity * it.unitPrice, 0) * 100) / 100;
  return { orderId: `${prefix}-${i}`, customer: `c-${(i * 7919) % customers}`, occurredAt: new Date(BASE_TIME + i * 60_000).toISOString(), items, total };
}

export const toBody = (p: Gen) => ({ orderId: p.orderId, customer: { externalId: p.customer }, occurredAt: p.occurredAt, total: p.total, currency: 'USD', channel: 'pos', items: p.items });

/** A minimal keep-alive HTTP client: fetch's overhead would be measured as the server's. */
export function poster(base: string, key: string, connections: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const { hostname, port } = new URL(base);
  return (path: string, body: unknown) =>
    new Promise<{ status: number; ms: number; text: string }>((resolve, reject) => {
      const data = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
      const started = performance.now();
      const req = http.request(
        { agent, hostname, port, path, method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': data.length } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, text: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      req.end(data);
    });
}

/** Runs `total` tasks on `workers` concurrent loops; returns wall time, per-task latencies and this process's CPU. */
async function drive(total: number, workers: number, task: (i: number) => Promise<number>): Promise<LoadResult> {
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < total) latencies.push(await task(next++));
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { seconds: (performance.now() - started) / 1000, latencies, loadCpuMs: (cpu.user + cpu.system) / 1000 };
}

export interface LoadSpec {
  base: string;
  key: string;
  phase: 'warm' | 'batch' | 'single';
  requests: number;
  connections: number;
  customers: number;
}
export interface LoadResult {
  seconds: number;
  latencies: number[];
  /** CPU of the process that generated the load, while it did (the server's own when in process). */
  loadCpuMs: number;
  /** Single purchases: when request i was sent (Date.now()). */
  sentAt?: number[];
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/**
 * One phase of load, in this process. Bodies are built and serialised before the clock starts:
 * on a machine of two cores the load generator's CPU is taken from the server's.
 */
export async function generateLoad(spec: LoadSpec): Promise<LoadResult> {
  const post = poster(spec.base, spec.key, spec.connections);
  if (spec.phase === 'batch') {
    const bodies = Array.from({ length: spec.requests }, (_, r) => json({ purchases: Array.from({ length: 1000 }, (_, k) => toBody(makePurchase('b', r * 1000 + k, spec.customers))) }));
    return drive(spec.requests, spec.connections, async (r) => {
      const res = await post('/v1/purchases/batch', bodies[r]);
      const out = JSON.parse(res.text) as { accepted: number };
      if (res.status !== 200 || out.accepted !== 1000) throw new Error(`batch ${r}: ${res.status} ${res.text.slice(0, 300)}`);
      return res.ms;
    });
  }
  const prefix = spec.phase === 'warm' ? 'warm' : 's';
  const bodies = Array.from({ length: spec.requests }, (_, i) => json(toBody(makePurchase(prefix, i, spec.customers))));
  const sentAt: number[] = new Array(spec.requests);
  const took: number[] = new Array(spec.requests);
  const result = await drive(spec.requests, spec.connections, async (i) => {
    sentAt[i] = Date.now();
    const res = await post('/v1/purchases', bodies[i]);
    if (res.status !== 201) throw new Error(`${spec.phase} ${i}: ${res.status} ${res.text.slice(0, 300)}`);
    took[i] = res.ms;
    return res.ms;
  });
  // BENCH_LATENCY_DUMP=file: each request's send time and latency, to see when the slow ones came.
  if (process.env.BENCH_LATENCY_DUMP && spec.phase !== 'warm') appendFileSync(process.env.BENCH_LATENCY_DUMP, sentAt.map((t, i) => `${spec.base} ${t} ${took[i]!.toFixed(2)}`).join('\n') + '\n');
  return { ...result, sentAt };
}

/**
 * Runs one phase in a child process (the default) or, with BENCH_LOADGEN=inprocess, in this one
 * (how the figures were first measured; kept to compare).
 */
export function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (process.env.BENCH_LOADGEN === 'inprocess') return generateLoad(spec);
  return inChild<LoadSpec, LoadResult>(__filename, spec);
}

serveInChild(module, generateLoad);
