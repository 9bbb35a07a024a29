import type { PurchaseInput } from '../purchases/schema';
import type { ConnectorAdapter, Write } from './types';
import { arr, centsToString, contactFields, header, hmacBase64Matches, idText, MappingError, moneyNumber, obj, str, toCents, usableEmail, usablePhone } from './kit';

/**
 * WooCommerce webhooks (REST API v3 payloads): X-WC-Webhook-Signature is base64(HMAC-SHA256(raw
 * body)), X-WC-Webhook-Topic the topic, X-WC-Webhook-Delivery-ID the delivery. Saving a webhook
 * sends an unsigned form-encoded ping, `webhook_id=<n>`, which must be answered 2xx.
 * Dates: the *_gmt fields are UTC without an offset; "Z" is added.
 */
const PAID = new Set(['processing', 'completed']);

const gmt = (v: unknown): string | undefined => {
  const s = str(v, 40);
  if (!s) return undefined;
  return /(Z|[+-]\d\d:\d\d)$/.test(s) ? s : `${s}Z`;
};

function purchase(order: Record<string, unknown>, id: string): PurchaseInput | string {
  const billing = obj(order.billing);
  const customerId = idText(order.customer_id);
  const externalId = customerId && customerId !== '0' ? `woocommerce:${customerId}` : undefined;
  const email = usableEmail(billing.email);
  const phone = usablePhone(billing.phone, billing.country);
  if (!externalId && !email && !phone) return `order ${id} names no customer, email or phone`;
  // The contract names date_created_gmt (the order placed), not date_paid_gmt.
  const occurredAt = gmt(order.date_created_gmt);
  if (!occurredAt) throw new MappingError(`order ${id} has no date_created_gmt`);
  const p: PurchaseInput = {
    orderId: `woocommerce:${id}`,
    customer: { ...(externalId ? { externalId } : {}), ...(email ? { email } : {}), ...(phone ? { phone } : {}) },
    occurredAt,
    total: moneyNumber(order.total),
    channel: order.created_via === 'pos' ? 'pos' : 'online',
  };
  const currency = str(order.currency, 3);
  if (currency) p.currency = currency;
  const items = arr(order.line_items).map(obj);
  if (items.length) {
    p.items = items.slice(0, 500).map((li) => {
      const quantity = Number(li.quantity) || 1;
      // `price` is a JSON number (after discounts, before tax); read as its decimal text and rounded to cents.
      const unit = li.price !== undefined && li.price !== null ? toCents(li.price) : toCents(li.subtotal ?? '0') / BigInt(quantity);
      const sku = str(li.sku, 100) ?? `product:${idText(li.variation_id) && li.variation_id !== 0 ? idText(li.variation_id) : (idText(li.product_id) ?? '?')}`;
      const name = str(li.name);
      return { sku, ...(name ? { name } : {}), quantity, unitPrice: moneyNumber(centsToString(unit < 0n ? 0n : unit)) };
    });
  }
  return p;
}

function order(o: Record<string, unknown>): Write[] {
  const id = idText(o.id);
  if (!id) throw new MappingError('order has no id');
  const status = String(o.status ?? '');
  if (!PAID.has(status) && status !== 'refunded') return [{ kind: 'skip', reason: `order ${id} is ${status || 'without status'}: stored once processing or completed` }];
  const p = purchase(o, id);
  if (typeof p === 'string') return [{ kind: 'skip', reason: p }];
  const writes: Write[] = [{ kind: 'purchase', purchase: p }];
  if (status === 'refunded') {
    // Each refund WooCommerce lists (totals are negative strings); a refunded order listing none is refunded whole.
    const refunds = arr(o.refunds).map(obj).filter((r) => idText(r.id));
    for (const r of refunds) {
      const cents = -toCents(r.total ?? '0');
      if (cents > 0n) writes.push({ kind: 'refund', orderId: p.orderId, refundId: `woocommerce:${idText(r.id)}`, amount: centsToString(cents) });
    }
    if (!refunds.length) writes.push({ kind: 'refund', orderId: p.orderId, refundId: `woocommerce:${id}:refunded`, amount: centsToString(toCents(o.total)) });
  }
  return writes;
}

function customer(c: Record<string, unknown>): Write[] {
  const id = idText(c.id);
  if (!id || id === '0') throw new MappingError('customer has no id');
  const billing = obj(c.billing);
  const fields = contactFields({ email: usableEmail(c.email) ?? billing.email, phone: billing.phone, firstName: c.first_name, lastName: c.last_name, city: billing.city, region: billing.state, country: billing.country, postalCode: billing.postcode });
  return [{ kind: 'customer', externalId: `woocommerce:${id}`, fields }];
}

export const woocommerce: ConnectorAdapter = {
  type: 'woocommerce',
  label: 'WooCommerce',
  setup:
    'In WordPress admin: WooCommerce → Settings → Advanced → Webhooks → Add webhook. Status Active, Delivery URL above, ' +
    'Secret the one given here, API version WP REST API v3; add one per topic: Order created, Order updated, Customer created, Customer updated.',
  topics: ['order.created', 'order.updated', 'customer.created', 'customer.updated'],
  verify: (raw, h, secret) => hmacBase64Matches(raw, secret, h['x-wc-webhook-signature']),
  isPing: (raw, h) => h['x-wc-webhook-signature'] === undefined && raw.length < 64 && /^webhook_id=\d+$/.test(raw.toString('latin1').trim()),
  topic: (h) => header(h, 'x-wc-webhook-topic') ?? '',
  deliveryName: (h) => header(h, 'x-wc-webhook-delivery-id'),
  map: (topic, body) => (topic.startsWith('order.') ? order(body) : customer(body)),
};
