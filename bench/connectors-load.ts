import { createHmac } from 'node:crypto';
import http from 'node:http';
import { inChild, serveInChild } from './fork';
import { makePurchase } from './ingest-load';

/**
 * The connectors benchmark's load generator, in a child process of its own (as bench/ingest-load.ts,
 * so that building and signing bodies is not measured as the server's latency). It posts Shopify
 * orders/create deliveries, signed as Shopify signs, or the same orders to /v1/purchases/batch.
 */
export interface ConnectorLoadSpec {
  base: string;
  /** /connect/shopify/<id> and its secret, or the batch API with a key. */
  target: { kind: 'connector'; path: string; secret: string } | { kind: 'batch'; key: string };
  prefix: string;
  orders: number;
  connections: number;
  customers: number;
}
export interface ConnectorLoadResult {
  seconds: number;
  latencies: number[];
  /** performance.timeOrigin-based wall clock (ms) when the last answer came. */
  lastAnswerAt: number;
}

/** An order in Shopify's orders/create shape (the fields hark reads, as Shopify sends them). */
export function shopifyOrder(prefix: string, i: number, customers: number) {
  const p = makePurchase(prefix, i, customers);
  const orderId = 1_000_000 * (prefix.charCodeAt(0) % 50) + i + 1;
  const cust = Number(p.customer.slice(2)) + 1;
  return {
    id: orderId,
    admin_graphql_api_id: `gid://shopify/Order/${orderId}`,
    created_at: p.occurredAt.replace('Z', '+00:00'),
    processed_at: p.occurredAt.replace('Z', '+00:00'),
    currency: 'USD',
    total_price: p.total.toFixed(2),
    source_name: 'pos',
    location_id: 61952425987,
    email: `c${cust}@example.com`,
    customer: { id: cust, email: `c${cust}@example.com`, admin_graphql_api_id: `gid://shopify/Customer/${cust}` },
    line_items: p.items.map((it, k) => ({ id: orderId * 10 + k, sku: it.sku, title: it.name, vendor: it.brand, quantity: it.quantity, price: it.unitPrice.toFixed(2) })),
  };
}

/** The same order as hark's batch API takes it (what the Shopify adapter maps it to). */
export function asPurchase(o: ReturnType<typeof shopifyOrder>) {
  return {
    orderId: `shopify:${o.id}`,
    customer: { externalId: `shopify:${o.customer.id}`, email: o.email },
    occurredAt: o.processed_at,
    total: Number(o.total_price),
    currency: o.currency,
    channel: 'pos',
    storeId: String(o.location_id),
    items: o.line_items.map((li) => ({ sku: li.sku, name: li.title, brand: li.vendor, quantity: li.quantity, unitPrice: Number(li.price) })),
  };
}

export async function generateConnectorLoad(spec: ConnectorLoadSpec): Promise<ConnectorLoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.connections });
  const { hostname, port } = new URL(spec.base);
  const t = spec.target;
  type Req = { path: string; body: Buffer; headers: Record<string, string> };
  const reqs: Req[] = [];
  if (t.kind === 'connector') {
    for (let i = 0; i < spec.orders; i++) {
      const body = Buffer.from(JSON.stringify(shopifyOrder(spec.prefix, i, spec.customers)));
      const hmac = createHmac('sha256', t.secret).update(body).digest('base64');
      reqs.push({ path: t.path, body, headers: { 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': hmac, 'x-shopify-webhook-id': `${spec.prefix}-${i}` } });
    }
  } else {
    for (let i = 0; i < spec.orders; i += 1000) {
      const purchases = Array.from({ length: Math.min(1000, spec.orders - i) }, (_, k) => asPurchase(shopifyOrder(spec.prefix, i + k, spec.customers)));
      reqs.push({ path: '/v1/purchases/batch', body: Buffer.from(JSON.stringify({ purchases })), headers: { authorization: `Bearer ${t.key}` } });
    }
  }
  const send = (r: Req) =>
    new Promise<number>((resolve, reject) => {
      const started = performance.now();
      const req = http.request({ agent, hostname, port, path: r.path, method: 'POST', headers: { ...r.headers, 'content-type': 'application/json', 'content-length': r.body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${r.path}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`))));
      });
      req.on('error', reject);
      req.end(r.body);
    });
  let next = 0;
  const latencies: number[] = [];
  const started = performance.now();
  await Promise.all(Array.from({ length: spec.connections }, async () => {
    while (next < reqs.length) latencies.push(await send(reqs[next++]!));
  }));
  const seconds = (performance.now() - started) / 1000;
  return { seconds, latencies, lastAnswerAt: performance.timeOrigin + performance.now() };
}

export function runConnectorLoad(spec: ConnectorLoadSpec): Promise<ConnectorLoadResult> {
  return inChild<ConnectorLoadSpec, ConnectorLoadResult>(__filename, spec);
}

serveInChild(module, generateConnectorLoad);
