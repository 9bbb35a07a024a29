import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';

/**
 * The UCI Online Retail sample (test/fixtures/data/online-retail-sample.csv) as hark customers and
 * purchases, dates shifted by whole days so that the last invoice falls on `lastDay` (yesterday).
 * One invoice is one purchase, its rows its items. Cancellations ("C" invoices, which do not name
 * what they cancel), rows without a customer and invoices that sum to nothing are left out.
 * The data set has no names or addresses: each customer gets an example.com address (RFC 2606,
 * never a real mailbox), a first name from a short list, and the first 990 a North American
 * number of the 555-0100..0198 block reserved for fiction in every area code, so nothing can
 * reach a real person (555-0199 of area 212 is the demo's sender).
 */
export interface DemoCustomer {
  externalId: string;
  email: string;
  phone?: string;
  firstName: string;
  country?: string;
  emailConsent: 'subscribed';
  smsConsent?: 'subscribed';
}

export interface DemoPurchase {
  orderId: string;
  customer: { externalId: string };
  occurredAt: string;
  total: number;
  currency: 'GBP';
  channel: 'online';
  items: Array<{ sku: string; name?: string; quantity: number; unitPrice: number }>;
}

const COUNTRIES: Record<string, string> = {
  'United Kingdom': 'GB', Germany: 'DE', France: 'FR', EIRE: 'IE', Netherlands: 'NL', Spain: 'ES', Switzerland: 'CH',
  Belgium: 'BE', Portugal: 'PT', Norway: 'NO', Australia: 'AU', Italy: 'IT', Finland: 'FI', Denmark: 'DK', Cyprus: 'CY',
  Sweden: 'SE', Austria: 'AT', Israel: 'IL', Poland: 'PL', Japan: 'JP', Iceland: 'IS', USA: 'US', Singapore: 'SG',
  Greece: 'GR', Canada: 'CA', Malta: 'MT', 'United Arab Emirates': 'AE', RSA: 'ZA', 'Hong Kong': 'HK', Lebanon: 'LB',
  Brazil: 'BR', 'Czech Republic': 'CZ', Lithuania: 'LT', Bahrain: 'BH', 'Saudi Arabia': 'SA',
};
const NAMES = ['Olivia', 'Amelia', 'Isla', 'Ava', 'Mia', 'Ivy', 'Lily', 'Grace', 'Noah', 'Oliver', 'George', 'Leo', 'Arthur', 'Harry', 'Oscar', 'Jack', 'Freya', 'Ella', 'Theo', 'Finley'];
const DAY = 86400_000;
const AREAS = ['212', '312', '415', '512', '617', '202', '303', '404', '503', '206'];
/** The i-th (0-989) number of the 555-0100..0198 blocks of AREAS. */
const fictionalPhone = (i: number) => `+1${AREAS[Math.floor(i / 99)]}5550${100 + (i % 99)}`;
export const DEMO_SMS_FROM = '+12125550199';

export function loadRetail(file: string, lastDay: Date): { customers: DemoCustomer[]; purchases: DemoPurchase[]; shiftDays: number } {
  const rows = parse(readFileSync(file), { columns: true, skip_empty_lines: true, trim: true }) as Array<Record<string, string>>;
  type Invoice = { customer: string; at: number; items: DemoPurchase['items']; cents: number };
  const invoices = new Map<string, Invoice>();
  const countryOf = new Map<string, string>();
  for (const r of rows) {
    const customerId = r.CustomerID ? String(Math.round(Number(r.CustomerID))) : '';
    const quantity = Number(r.Quantity);
    const price = Number(r.UnitPrice);
    if (!customerId || !r.InvoiceNo || r.InvoiceNo.startsWith('C') || !(quantity > 0) || !(price >= 0)) continue;
    const at = Date.parse(`${r.InvoiceDate!.replace(' ', 'T')}Z`);
    if (!Number.isFinite(at)) continue;
    let inv = invoices.get(r.InvoiceNo);
    if (!inv) invoices.set(r.InvoiceNo, (inv = { customer: customerId, at, items: [], cents: 0 }));
    inv.items.push({ sku: r.StockCode || 'unknown', ...(r.Description ? { name: r.Description.slice(0, 200) } : {}), quantity, unitPrice: price });
    inv.cents += Math.round(quantity * price * 100);
    if (r.Country && COUNTRIES[r.Country]) countryOf.set(customerId, COUNTRIES[r.Country]!);
  }
  const kept = [...invoices.entries()].filter(([, v]) => v.cents > 0);
  const last = Math.max(...kept.map(([, v]) => v.at));
  // Whole days, so times of day (and weekdays' rhythm) stay as they were, counted between the two
  // UTC dates: the last invoice lands on lastDay's date whatever the hour (between midnight and the
  // last invoice's time of day, a difference of instants fell one day short).
  const shiftDays = Math.floor(lastDay.getTime() / DAY) - Math.floor(last / DAY);
  const shift = shiftDays * DAY;
  const purchases: DemoPurchase[] = kept
    .sort((a, b) => a[1].at - b[1].at)
    .map(([no, v]) => ({ orderId: `retail-${no}`, customer: { externalId: `retail-${v.customer}` }, occurredAt: new Date(v.at + shift).toISOString(), total: v.cents / 100, currency: 'GBP', channel: 'online', items: v.items }));
  const ids = [...new Set(kept.map(([, v]) => v.customer))].sort();
  const customers: DemoCustomer[] = ids.map((id, i) => ({
    externalId: `retail-${id}`,
    email: `customer-${id}@example.com`,
    firstName: NAMES[Number(id) % NAMES.length]!,
    ...(countryOf.get(id) ? { country: countryOf.get(id) } : {}),
    emailConsent: 'subscribed',
    ...(i < 990 ? { phone: fictionalPhone(i), smsConsent: 'subscribed' as const } : {}),
  }));
  return { customers, purchases, shiftDays };
}
