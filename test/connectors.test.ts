import { until } from './helpers/until';
import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'bullmq';
import { startConnectorWorker } from '../workers/connector-worker';
import { QUEUE_NAMES } from '../src/queues';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Connectors end to end: the real app and the real mapping worker, deliveries in the platforms'
 * documented shapes (test/fixtures/connectors/), signed here as each platform signs:
 * base64(HMAC-SHA256(secret, raw body)), in X-Shopify-Hmac-Sha256 / X-WC-Webhook-Signature.
 */
const fixture = (name: string) => readFileSync(join(__dirname, 'fixtures/connectors', name));
const sign = (secret: string, body: Buffer | string) => createHmac('sha256', secret).update(body).digest('base64');

let srv: TestServer;
let worker: Worker;
beforeAll(async () => {
  srv = await startTestServer({ env: { PUBLIC_URL: 'https://hark.example.com/' } });
  worker = await startConnectorWorker(srv.deps, { concurrency: 8, retryDelayMs: 50 });
});
afterAll(async () => {
  await worker.close();
  await srv.close();
});


async function setup(type: 'shopify' | 'woocommerce' = 'shopify') {
  const ws = await newWorkspace(srv.url);
  const secret = `shpss_${randomUUID()}`;
  const created = await ws.api.post('/v1/connectors', { type, name: `${type} store`, secret });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  const path = `/connect/${type}/${id}`;
  const post = (body: Buffer | string, headers: Record<string, string>) =>
    fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then(async (r) => ({ status: r.status, body: (await r.json().catch(() => null)) as any }));
  const shopify = (topic: string, body: Buffer | string, webhookId: string = randomUUID(), key = secret) =>
    post(body, { 'x-shopify-topic': topic, 'x-shopify-hmac-sha256': sign(key, body), 'x-shopify-webhook-id': webhookId, 'x-shopify-shop-domain': 'example.myshopify.com' });
  const woo = (topic: string, body: Buffer | string, key = secret) =>
    post(body, { 'x-wc-webhook-topic': topic, 'x-wc-webhook-signature': sign(key, body), 'x-wc-webhook-delivery-id': randomUUID(), 'x-wc-webhook-source': 'https://shop.example.com/' });
  const deliveries = async () => (await ws.api.get(`/v1/connectors/${id}/deliveries`)).body.data as Array<{ id: string; topic: string; outcome: string; reason?: string }>;
  const settled = (n: number) =>
    until(`${n} settled deliveries`, async () => {
      const d = await deliveries();
      return d.length >= n && d.every((x) => x.outcome !== 'pending') ? d : null;
    }) as Promise<Awaited<ReturnType<typeof deliveries>>>;
  const rows = async (table: string) => Number((await srv.deps.db(table).where({ workspace_id: ws.id }).count({ n: '*' }))[0]!.n);
  return { ws, secret, id, created: created.body, post, shopify, woo, deliveries, settled, rows };
}

describe('connectors: the admin API', () => {
  test('when a connector is created, then 201 with its URL under PUBLIC_URL, and the secret is never shown nor stored as typed', async () => {
    const c = await setup();
    expect(c.created).toEqual(expect.objectContaining({ id: c.id, type: 'shopify', name: 'shopify store', url: `https://hark.example.com/connect/shopify/${c.id}` }));
    const all = JSON.stringify([c.created, (await c.ws.api.get('/v1/connectors')).body, (await c.ws.api.get(`/v1/connectors/${c.id}`)).body]);
    expect(all).not.toContain(c.secret);
    const row = await srv.deps.db('connectors').where({ id: c.id }).first();
    expect(Buffer.from(row.secret_enc).toString('latin1')).not.toContain(c.secret);
    expect((await c.ws.api.get('/v1/connectors')).body.data.map((x: { id: string }) => x.id)).toEqual([c.id]);
  });

  test('when the body is bad or the id is another workspace\'s, then 400 or 404', async () => {
    const c = await setup();
    const other = await newWorkspace(srv.url);
    expect((await c.ws.api.post('/v1/connectors', { type: 'square', name: 'x', secret: '12345678' })).status).toBe(400);
    expect((await c.ws.api.post('/v1/connectors', { type: 'shopify', name: 'x' })).status).toBe(400);
    expect((await other.api.get(`/v1/connectors/${c.id}`)).status).toBe(404);
    expect((await other.api.get(`/v1/connectors/${c.id}/deliveries`)).status).toBe(404);
    expect((await other.api.delete(`/v1/connectors/${c.id}`)).status).toBe(404);
    expect((await c.ws.api.get('/v1/connectors/not-a-uuid')).status).toBe(404);
  });
});

describe('connectors: what the public route refuses', () => {
  test('when the signature is missing, wrong, over a body changed by one byte, or another connector\'s, then 401, nothing stored, and the refusal counted', async () => {
    const c = await setup();
    const other = await setup();
    const body = fixture('shopify-order-pos.json');
    const changed = Buffer.from(body);
    changed[100] = changed[100]! ^ 1;
    const attempts = [
      c.post(body, { 'x-shopify-topic': 'orders/create', 'x-shopify-webhook-id': 'a' }),
      c.post(body, { 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': 'AAAA', 'x-shopify-webhook-id': 'b' }),
      c.post(changed, { 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': sign(c.secret, body), 'x-shopify-webhook-id': 'c' }),
      c.shopify('orders/create', body, 'd', other.secret),
      // WooCommerce's header on a Shopify connector is no signature at all.
      c.post(body, { 'x-wc-webhook-topic': 'order.created', 'x-wc-webhook-signature': sign(c.secret, body) }),
    ];
    for (const a of await Promise.all(attempts)) expect(a).toEqual({ status: 401, body: { error: expect.objectContaining({ code: 'unauthorized' }) } });
    expect(await c.rows('connector_deliveries')).toBe(0);
    expect(await c.rows('purchases')).toBe(0);
    expect(await c.deliveries()).toEqual([]);
    expect((await c.ws.api.get(`/v1/connectors/${c.id}`)).body.refusedDeliveries).toBe(5);
    // The same body, signed right, is taken: the refusals were for the signature alone.
    expect((await c.shopify('orders/create', body)).status).toBe(200);
  });

  test('when the connector is unknown, of another type or deleted, then 404; when the body is over 1 MB, then 413', async () => {
    const c = await setup();
    const body = fixture('shopify-order-pos.json');
    const signed = { 'x-shopify-topic': 'orders/create', 'x-shopify-hmac-sha256': sign(c.secret, body) };
    const at = (path: string, b: Buffer = body) => fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...signed }, body: b }).then((r) => r.status);
    expect(await at(`/connect/shopify/${randomUUID()}`)).toBe(404);
    expect(await at(`/connect/shopify/not-a-uuid`)).toBe(404);
    expect(await at(`/connect/woocommerce/${c.id}`)).toBe(404);
    expect(await at(`/connect/square/${c.id}`)).toBe(404);
    const big = Buffer.alloc(1024 * 1024 + 10, 0x20);
    expect(await at(`/connect/shopify/${c.id}`, big)).toBe(413);
    // Without a Content-Length (chunked), the limit holds while reading.
    const chunked = new ReadableStream({ start: (ctl) => (ctl.enqueue(new Uint8Array(big)), ctl.close()) });
    const streamed = await fetch(`${srv.url}/connect/shopify/${c.id}`, { method: 'POST', headers: { 'content-type': 'application/json', ...signed }, body: chunked, duplex: 'half' } as RequestInit);
    expect(streamed.status).toBe(413);
    // A request the fast path leaves to express (a query string) is served the same way.
    expect(await at(`/connect/shopify/${c.id}?shop=example`)).toBe(200);
    expect(await at(`/connect/shopify/${randomUUID()}?shop=example`)).toBe(404);
    expect((await c.ws.api.delete(`/v1/connectors/${c.id}`)).status).toBe(204);
    expect(await at(`/connect/shopify/${c.id}`)).toBe(404);
    // Deleting the connector took its deliveries with it.
    expect(await srv.deps.db('connector_deliveries').where({ connector_id: c.id }).count({ n: '*' })).toEqual([{ n: '0' }]);
  });

  test('when the connector was deleted by another process (this one still has it cached), then 404 and nothing stored', async () => {
    const c = await setup();
    const body = fixture('shopify-order-pos.json');
    expect((await c.shopify('orders/create', body)).status).toBe(200);
    await srv.deps.db('connectors').where({ id: c.id }).del();
    expect((await c.shopify('orders/create', body)).status).toBe(404);
    expect((await c.shopify('orders/create', body, 'another')).status).toBe(404);
    expect(await c.rows('connector_deliveries')).toBe(0);
  });
});

describe('connectors: Shopify', () => {
  test('when a POS order arrives, then it is a pos purchase at its location, money and time exact, its customer by Shopify id, answered before it is mapped', async () => {
    const c = await setup();
    const res = await c.shopify('orders/create', fixture('shopify-order-pos.json'));
    expect(res).toEqual({ status: 200, body: { received: true, id: expect.any(String) } });
    expect(await c.settled(1)).toEqual([{ id: res.body.id, topic: 'orders/create', receivedAt: expect.any(String), outcome: 'stored' }]);
    const customer = await c.ws.api.get('/v1/customers/shopify:6940021194755');
    expect(customer.status).toBe(200);
    expect(customer.body).toMatchObject({ email: 'marie.dupont@example.fr', phone: '+33612345678', stats: { purchaseCount: 1, totalSpent: 64.8 } });
    const exported = await c.ws.api.get('/v1/customers/shopify:6940021194755/export');
    expect(exported.body.purchases).toEqual([
      expect.objectContaining({
        orderId: 'shopify:5512398004521', total: 64.8, currency: 'EUR', channel: 'pos', storeId: '61952425987', occurredAt: '2026-03-14T10:42:05.000Z',
        items: [
          { sku: 'SOCK-TRAIL-M', name: 'Trail Sock', category: null, brand: 'Falke', quantity: 2, unitPrice: 12.9 },
          { sku: 'variant:42011229356195', name: 'Shoe care kit', category: null, brand: 'Collonil', quantity: 1, unitPrice: 39 },
        ],
      }),
    ]);
    // The raw body (personal data) is not kept once mapped.
    expect((await srv.deps.db('connector_deliveries').where({ id: res.body.id }).first()).body).toBeNull();
  });

  test('when an online order carries ids beyond 2^53, then they are kept exactly and the channel is online', async () => {
    const c = await setup();
    await c.shopify('orders/create', fixture('shopify-order-online.json'));
    await c.settled(1);
    const customer = await c.ws.api.get('/v1/customers/shopify:115310627314723954/export');
    expect(customer.status).toBe(200);
    expect(customer.body.purchases).toEqual([expect.objectContaining({ orderId: 'shopify:820982911946154508', total: 403, currency: 'USD', channel: 'online', storeId: null, occurredAt: '2022-01-01T00:00:00.000Z' })]);
    expect(customer.body.purchases[0].items).toEqual([
      expect.objectContaining({ sku: 'IPOD2008PINK', brand: null, unitPrice: 199 }),
      expect.objectContaining({ sku: 'IPOD2008PINK', brand: 'Apple', unitPrice: 199 }),
    ]);
  });

  test('when the same delivery comes again, or the same order as orders/paid, then it is stored once and the others are listed as duplicates', async () => {
    const c = await setup();
    const body = fixture('shopify-order-pos.json');
    const first = await c.shopify('orders/create', body, 'wh-1');
    const again = await c.shopify('orders/create', body, 'wh-1');
    expect([first.status, again.status]).toEqual([200, 200]);
    await c.settled(2);
    await c.shopify('orders/paid', body, 'wh-2');
    const d = await c.settled(3);
    expect(d.map((x) => [x.topic, x.outcome])).toEqual([['orders/paid', 'duplicate'], ['orders/create', 'duplicate'], ['orders/create', 'stored']]);
    expect(await c.rows('purchases')).toBe(1);
    expect((await c.ws.api.get('/v1/customers/shopify:6940021194755')).body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 64.8 });
  });

  test('when a refund arrives before its order, then it is kept and applied when the order arrives; its amount counts only successful refund transactions', async () => {
    const c = await setup();
    await c.shopify('refunds/create', fixture('shopify-refund.json'));
    const kept = await c.settled(1);
    expect(kept[0]).toMatchObject({ outcome: 'stored', reason: expect.stringContaining('kept until order shopify:5512398004521') });
    expect(await c.rows('refunds')).toBe(0);
    await c.shopify('orders/create', fixture('shopify-order-pos.json'));
    await until('the kept refund applied', async () => (await c.rows('refunds')) === 1);
    const exported = await c.ws.api.get('/v1/customers/shopify:6940021194755/export');
    expect(exported.body.refunds).toEqual([expect.objectContaining({ orderId: 'shopify:5512398004521', refundId: 'shopify:929361463', amount: 12.9 })]);
    expect(exported.body.customer.stats).toMatchObject({ totalSpent: 51.9 });
    const d = await c.settled(2);
    expect(d[1]).toMatchObject({ topic: 'refunds/create', outcome: 'stored', reason: expect.stringContaining('applied when order') });
    // The same refund again refunds nothing more.
    await c.shopify('refunds/create', fixture('shopify-refund.json'));
    const after = await c.settled(3);
    expect(after[0]).toMatchObject({ topic: 'refunds/create', outcome: 'duplicate' });
    expect((await c.ws.api.get('/v1/customers/shopify:6940021194755')).body.stats).toMatchObject({ totalSpent: 51.9 });
  });

  test('when orders and their refunds arrive at the same moment in any order, then every refund is applied exactly once', async () => {
    const c = await setup();
    const order = JSON.parse(fixture('shopify-order-pos.json').toString());
    const refund = JSON.parse(fixture('shopify-refund.json').toString());
    const n = 20;
    const posts = Array.from({ length: n }, (_, i) => [
      c.shopify('orders/create', JSON.stringify({ ...order, id: 7000 + i, admin_graphql_api_id: `gid://shopify/Order/${7000 + i}` })),
      c.shopify('refunds/create', JSON.stringify({ ...refund, id: 9000 + i, admin_graphql_api_id: `gid://shopify/Refund/${9000 + i}`, order_id: 7000 + i })),
    ]).flat();
    expect((await Promise.all(posts)).map((r) => r.status)).toEqual(Array(2 * n).fill(200));
    await c.settled(2 * n);
    await until('all refunds applied', async () => (await c.rows('refunds')) === n);
    const refunded = await srv.deps.db('purchases').where({ workspace_id: c.ws.id }).pluck('refunded');
    expect(refunded).toEqual(Array(n).fill('12.90'));
    expect(await c.rows('connector_pending_refunds')).toBe(0);
  });

  test('when a refund arrives after its order, then the purchase is refunded at once', async () => {
    const c = await setup();
    await c.shopify('orders/create', fixture('shopify-order-pos.json'));
    await c.settled(1);
    await c.shopify('refunds/create', fixture('shopify-refund.json'));
    expect((await c.settled(2))[0]).toMatchObject({ outcome: 'stored' });
    expect((await c.ws.api.get('/v1/customers/shopify:6940021194755')).body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 51.9 });
  });

  test('when customers/create arrives, then the customer is upserted with consents from email_marketing_consent and sms_marketing_consent', async () => {
    const c = await setup();
    await c.shopify('customers/create', fixture('shopify-customer.json'));
    expect((await c.settled(1))[0]!.outcome).toBe('stored');
    const got = await c.ws.api.get('/v1/customers/shopify:706405506930370084');
    expect(got.body).toMatchObject({ email: 'bob@biller.com', phone: '+16135550135', firstName: 'Bob', lastName: 'Biller', city: 'Ottawa', region: 'Ontario', country: 'CA', emailConsent: 'subscribed', smsConsent: 'unsubscribed' });
    const update = JSON.parse(fixture('shopify-customer.json').toString());
    update.email_marketing_consent.state = 'unsubscribed';
    await c.shopify('customers/update', JSON.stringify(update));
    await c.settled(2);
    expect((await c.ws.api.get('/v1/customers/shopify:706405506930370084')).body.emailConsent).toBe('unsubscribed');
  });

  test('when an order names no customer, then it goes to the customer with its email, and with nothing at all it is skipped with the reason', async () => {
    const c = await setup();
    await c.ws.api.put('/v1/customers/known', { email: 'walkin@example.com' });
    const order = JSON.parse(fixture('shopify-order-pos.json').toString());
    order.customer = null;
    order.email = 'Walkin@Example.com';
    await c.shopify('orders/create', JSON.stringify(order));
    const anon = { ...order, id: 1, admin_graphql_api_id: 'gid://shopify/Order/1', email: '', contact_email: null };
    await c.shopify('orders/create', JSON.stringify(anon));
    const d = await c.settled(2);
    expect(d.map((x) => [x.outcome, x.reason])).toEqual([['skipped', 'order 1 names no customer, email or phone'], ['stored', undefined]]);
    expect((await c.ws.api.get('/v1/customers/known')).body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 64.8 });
  });

  test('when a topic is not mapped, or the body cannot be read, then 200, recorded as ignored or failed with why, never a 500', async () => {
    const c = await setup();
    expect((await c.shopify('products/update', '{"id": 1}')).status).toBe(200);
    expect((await c.shopify('orders/create', 'not json')).status).toBe(200);
    const broken = { ...JSON.parse(fixture('shopify-order-pos.json').toString()), total_price: 'lots' };
    expect((await c.shopify('orders/create', JSON.stringify(broken))).status).toBe(200);
    const d = await c.settled(3);
    expect(d.map((x) => [x.topic, x.outcome, x.reason])).toEqual([
      ['orders/create', 'failed', '"lots" is not an amount'],
      ['orders/create', 'failed', 'the body is not JSON'],
      ['products/update', 'ignored', 'topic products/update is not mapped'],
    ]);
    expect(await c.rows('purchases')).toBe(0);
  });
});

describe('connectors: WooCommerce', () => {
  test('when WooCommerce pings at save time, then 200 and nothing is stored', async () => {
    const c = await setup('woocommerce');
    const res = await fetch(`${srv.url}/connect/woocommerce/${c.id}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'webhook_id=42' });
    expect(res.status).toBe(200);
    expect(await c.rows('connector_deliveries')).toBe(0);
    // Anything else unsigned is refused.
    const other = await fetch(`${srv.url}/connect/woocommerce/${c.id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"webhook_id": 42}' });
    expect(other.status).toBe(401);
  });

  test('when a processing order is created by a guest, then it is a purchase of the customer found by billing email; pending is skipped; refunded refunds', async () => {
    const c = await setup('woocommerce');
    const order = JSON.parse(fixture('woocommerce-order.json').toString());
    expect((await c.woo('order.created', fixture('woocommerce-order.json'))).status).toBe(200);
    await c.woo('order.created', JSON.stringify({ ...order, id: 728, status: 'pending' }));
    const d = await c.settled(2);
    expect(d.map((x) => x.outcome)).toEqual(['skipped', 'stored']);
    expect(d[0]!.reason).toContain('pending');
    const [row] = await srv.deps.db('purchases as p').join('customers as c', 'c.id', 'p.customer_id').where({ 'p.workspace_id': c.ws.id }).select('p.order_id', 'p.total', 'p.occurred_at', 'p.channel', 'c.email', 'c.phone', 'c.external_id');
    expect(row).toMatchObject({ order_id: 'woocommerce:727', total: '29.35', channel: 'online', email: 'john.doe@example.com', phone: null, external_id: null });
    expect(new Date(row.occurred_at).toISOString()).toBe('2026-03-22T16:28:02.000Z');
    const items = await srv.deps.db('purchase_items').where({ workspace_id: c.ws.id }).orderBy('id').select('sku', 'name', 'quantity', 'unit_price');
    expect(items).toEqual([
      { sku: 'product:93', name: 'Woo Single #1', quantity: 2, unit_price: '3.00' },
      { sku: 'Bar3', name: 'Ship Your Idea &ndash; Color: Black, Size: M Test', quantity: 1, unit_price: '12.00' },
    ]);
    await c.woo('order.updated', JSON.stringify({ ...order, status: 'refunded', refunds: [{ id: 730, reason: '', total: '-10.00' }] }));
    await c.settled(3);
    const [p] = await srv.deps.db('purchases').where({ workspace_id: c.ws.id, order_id: 'woocommerce:727' }).select('refunded');
    expect(p.refunded).toBe('10.00');
  });

  test('when a registered customer is created and orders, then the order goes to woocommerce:<customer_id>', async () => {
    const c = await setup('woocommerce');
    const customer = { id: 25, email: 'Joan@example.com', first_name: 'Joan', last_name: 'Ray', role: 'customer', username: 'joan', billing: { phone: '+1 415 555 0100', city: 'Oakland', state: 'CA', country: 'US', postcode: '94601', email: 'joan@example.com' } };
    await c.woo('customer.created', JSON.stringify(customer));
    const order = { ...JSON.parse(fixture('woocommerce-order.json').toString()), id: 800, customer_id: 25, status: 'completed' };
    await c.woo('order.updated', JSON.stringify(order));
    await c.settled(2);
    const got = await c.ws.api.get('/v1/customers/woocommerce:25');
    expect(got.body).toMatchObject({ email: 'joan@example.com', phone: '+14155550100', firstName: 'Joan', city: 'Oakland', country: 'US', stats: { purchaseCount: 1, totalSpent: 29.35 } });
  });
});

describe('connectors: retries', () => {
  // A table the mapping needs, renamed away and back: a failure a retry can cure, as a database outage is.
  const hide = () => srv.deps.db.raw('ALTER TABLE connector_pending_refunds RENAME TO connector_pending_refunds_away');
  const restore = () => srv.deps.db.raw('ALTER TABLE IF EXISTS connector_pending_refunds_away RENAME TO connector_pending_refunds');
  afterEach(restore);

  test('when mapping fails for a passing reason, then the job is retried and the delivery stored once it can be', async () => {
    const c = await setup();
    await hide();
    const res = await c.shopify('orders/create', fixture('shopify-order-pos.json'));
    const queue = srv.deps.queues.get(QUEUE_NAMES.connectors);
    await until('a failed attempt', async () => ((await queue.getJob(`cd-${res.body.id}`))?.attemptsMade ?? 0) >= 1);
    // The purchase was stored before the failing step; the delivery is not finished (it keeps its body).
    expect((await srv.deps.db('connector_deliveries').where({ id: res.body.id }).first()).body).not.toBeNull();
    await restore();
    await until('the delivery finished', async () => (await srv.deps.db('connector_deliveries').where({ id: res.body.id }).first()).body === null);
    // The retry finds its own purchase stored: that is "stored", not a duplicate.
    expect((await c.settled(1))[0]).toMatchObject({ outcome: 'stored' });
    expect(await c.rows('purchases')).toBe(1);
    expect((await c.ws.api.get('/v1/customers/shopify:6940021194755')).body.stats).toMatchObject({ purchaseCount: 1, totalSpent: 64.8 });
  });

  test('when mapping keeps failing, then after the last attempt the delivery is failed with the reason', async () => {
    const c = await setup();
    await hide();
    const res = await c.shopify('orders/create', fixture('shopify-order-pos.json'));
    await until('the delivery given up', async () => (await srv.deps.db('connector_deliveries').where({ id: res.body.id }).first()).body === null);
    const [d] = await c.deliveries();
    expect(d).toMatchObject({ outcome: 'failed', reason: 'not mapped after 6 attempts: relation "connector_pending_refunds" does not exist' });
  });
});
