import type { PurchaseInput } from '../purchases/schema';
import type { ConnectorAdapter, Write } from './types';
import { arr, centsToString, contactFields, header, hmacBase64Matches, idText, MappingError, moneyNumber, obj, str, toCents, usableEmail, usablePhone } from './kit';

/**
 * Shopify webhooks (JSON, any API version): X-Shopify-Hmac-Sha256 is base64(HMAC-SHA256(raw body)),
 * X-Shopify-Topic the topic, X-Shopify-Webhook-Id the delivery (the same on Shopify's retries).
 * Ids are read from admin_graphql_api_id ("gid://shopify/Order/123") where a payload has one, so
 * ids beyond 2^53 stay exact even if a number was rounded.
 */
const gid = (o: Record<string, unknown>): string | undefined => {
  const g = typeof o.admin_graphql_api_id === 'string' ? /\/(\d+)$/.exec(o.admin_graphql_api_id)?.[1] : undefined;
  return g ?? idText(o.id);
};

const consent = (v: unknown): 'subscribed' | 'unsubscribed' | undefined => {
  const state = obj(v).state;
  return state === 'subscribed' || state === 'unsubscribed' ? state : undefined;
};

function purchase(order: Record<string, unknown>): Write[] {
  const id = gid(order);
  if (!id) throw new MappingError('order has no id');
  const customer = obj(order.customer);
  const billing = obj(order.billing_address);
  const customerId = gid(customer);
  const email = usableEmail(order.email) ?? usableEmail(order.contact_email) ?? usableEmail(customer.email);
  const phone = usablePhone(order.phone) ?? usablePhone(customer.phone) ?? usablePhone(billing.phone, billing.country_code);
  if (!customerId && !email && !phone) return [{ kind: 'skip', reason: `order ${id} names no customer, email or phone` }];
  const occurredAt = str(order.processed_at) ?? str(order.created_at);
  if (!occurredAt) throw new MappingError(`order ${id} has neither processed_at nor created_at`);
  const p: PurchaseInput = {
    orderId: `shopify:${id}`,
    customer: { ...(customerId ? { externalId: `shopify:${customerId}` } : {}), ...(email ? { email } : {}), ...(phone ? { phone } : {}) },
    occurredAt,
    total: moneyNumber(order.total_price ?? order.current_total_price),
    channel: order.source_name === 'pos' ? 'pos' : 'online',
  };
  const currency = str(order.currency, 3);
  if (currency) p.currency = currency;
  const location = idText(order.location_id);
  if (location) p.storeId = location;
  const items = arr(order.line_items).map(obj);
  if (items.length) {
    p.items = items.slice(0, 500).map((li) => {
      const sku = str(li.sku, 100) ?? (idText(li.variant_id) ? `variant:${idText(li.variant_id)}` : `line:${gid(li) ?? '?'}`);
      const brand = str(li.vendor, 200);
      const name = str(li.title) ?? str(li.name);
      return { sku, ...(name ? { name } : {}), ...(brand ? { brand } : {}), quantity: Number(li.quantity) || 1, unitPrice: moneyNumber(li.price ?? '0') };
    });
  }
  return [{ kind: 'purchase', purchase: p }];
}

function refund(r: Record<string, unknown>): Write[] {
  const id = gid(r);
  const orderId = idText(r.order_id);
  if (!id || !orderId) throw new MappingError('refund has no id or order_id');
  const refunds = arr(r.transactions).map(obj).filter((t) => t.kind === 'refund');
  const counted = refunds.some((t) => t.status !== undefined && t.status !== null) ? refunds.filter((t) => t.status === 'success') : refunds;
  const cents = counted.reduce((sum, t) => sum + toCents(t.amount), 0n);
  if (cents <= 0n) return [{ kind: 'skip', reason: `refund ${id} moves no money (no successful refund transaction)` }];
  return [{ kind: 'refund', orderId: `shopify:${orderId}`, refundId: `shopify:${id}`, amount: centsToString(cents) }];
}

function customer(c: Record<string, unknown>): Write[] {
  const id = gid(c);
  if (!id) throw new MappingError('customer has no id');
  const address = obj(c.default_address);
  const fields = contactFields({ email: c.email, phone: c.phone, firstName: c.first_name, lastName: c.last_name, city: address.city, region: address.province, country: address.country_code, postalCode: address.zip });
  const ec = consent(c.email_marketing_consent);
  const sc = consent(c.sms_marketing_consent);
  if (ec) fields.emailConsent = ec;
  if (sc) fields.smsConsent = sc;
  return [{ kind: 'customer', externalId: `shopify:${id}`, fields }];
}

export const shopify: ConnectorAdapter = {
  type: 'shopify',
  label: 'Shopify',
  setup:
    'In Shopify admin: Settings → Notifications → Webhooks → Create webhook. Format JSON, URL above; add one per event: ' +
    'Order creation, Order payment, Refund create, Customer creation, Customer update. The secret is the key Shopify shows ' +
    'there ("Your webhooks will be signed with ...").',
  topics: ['orders/create', 'orders/paid', 'refunds/create', 'customers/create', 'customers/update'],
  verify: (raw, h, secret) => hmacBase64Matches(raw, secret, h['x-shopify-hmac-sha256']),
  topic: (h) => header(h, 'x-shopify-topic') ?? '',
  deliveryName: (h) => header(h, 'x-shopify-webhook-id'),
  map(topic, body) {
    if (topic === 'orders/create' || topic === 'orders/paid') return purchase(body);
    if (topic === 'refunds/create') return refund(body);
    return customer(body);
  },
};
