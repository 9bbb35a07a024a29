import type { Columns, StagedRow } from './rows';

/**
 * The row check of a purchase file without zod, for the rows that are plainly valid: a customer
 * named by externalId only, an ISO-8601 time with offset (or one `toIso` made from the file's
 * date format), and every field within the API schema's bounds. It answers null for anything
 * else (an email or phone, an empty or odd cell, a value at a bound), and the caller then runs
 * the full check, which gives every error its message: this path only ever accepts rows the
 * API's schema accepts, and stages the same data (test/imports-fast-rows.test.ts compares the
 * two on generated rows). On a 200k-row file the zod check of each row as a one-item purchase
 * was ~1.8 s of the worker's ~3.7 s of parse CPU.
 */

const INTEGER = /^\d{1,7}$/;
const MONEY = /^\d{1,11}(\.\d{1,2})?$/;
const CURRENCY = /^[A-Za-z]{3}$/;
/** zMoney's own test (src/normalize.ts) on a number MONEY matched. */
const cents = (n: number) => n <= 1e11 && Math.abs(Math.round(n * 100) - n * 100) < 1e-6;
/** What zod's `z.iso.datetime({ offset: true })` takes, less: seconds always, hours of offset to 23. */
const ISO = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** A calendar date that exists, in years 1000-9999. */
function isoOk(s: string): boolean {
  const m = ISO.exec(s);
  if (!m) return false;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (y < 1000 || mo < 1 || mo > 12 || d < 1) return false;
  const days = mo === 2 ? (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28) : [4, 6, 9, 11].includes(mo) ? 30 : 31;
  return d <= days;
}

export type FastPurchase = (line: number, record: string[]) => StagedRow | null;

/**
 * `toIso` turns the file's date into the API's ISO form (the date format and zone of the import),
 * or null when it does not read; without a date format the cell must already be ISO with offset.
 */
export function fastPurchaseConverter(cols: Columns, toIso: ((s: string) => string | null) | null): FastPurchase {
  const at = (f: string) => cols.indexOf(f);
  const orderId = at('orderId');
  const ext = at('customerExternalId');
  const occurredAt = at('occurredAt');
  const sku = at('sku');
  const quantity = at('quantity');
  const unitPrice = at('unitPrice');
  const total = at('total');
  const currency = at('currency');
  const storeId = at('storeId');
  const channel = at('channel');
  const name = at('name');
  const category = at('category');
  const brand = at('brand');
  // Files that name a customer by email or phone take the full path (normalisation, phone parsing).
  if (ext === -1 || at('customerEmail') !== -1 || at('customerPhone') !== -1) return () => null;
  const width = cols.length;
  const opt = (record: string[], i: number, max: number): string | undefined | null => {
    if (i === -1) return undefined;
    const v = record[i]!.trim();
    if (!v) return undefined;
    return v.length <= max ? v : null;
  };

  return (line, record) => {
    if (record.length !== width) return null;
    const key = record[orderId]!.trim();
    const x = record[ext]!.trim();
    const s = record[sku]!.trim();
    if (!key || key.length > 200 || !x || x.length > 200 || !s || s.length > 100) return null;
    const rawAt = record[occurredAt]!.trim();
    const iso = toIso ? toIso(rawAt) : rawAt;
    if (iso === null || !isoOk(iso)) return null;
    const q = record[quantity]!.trim();
    const p = record[unitPrice]!.trim();
    if (!INTEGER.test(q) || !MONEY.test(p)) return null;
    const qty = Number(q);
    const price = Number(p);
    if (qty < 1 || qty > 1_000_000 || !cents(price)) return null;
    let tot: number | undefined;
    if (total !== -1) {
      const t = record[total]!.trim();
      if (t) {
        if (!MONEY.test(t)) return null;
        tot = Number(t);
        if (!cents(tot)) return null;
      }
    }
    const cur = opt(record, currency, 3);
    if (cur === null || (cur !== undefined && !CURRENCY.test(cur))) return null;
    const ch = opt(record, channel, 6);
    const chan = ch === undefined ? undefined : ch?.toLowerCase();
    if (chan === null || (chan !== undefined && chan !== 'pos' && chan !== 'online')) return null;
    const store = opt(record, storeId, 200);
    const n = opt(record, name, 500);
    const cat = opt(record, category, 200);
    const b = opt(record, brand, 200);
    if (store === null || n === null || cat === null || b === null) return null;
    const data: Record<string, unknown> = { orderId: key, customer: { externalId: x }, occurredAt: iso };
    if (cur !== undefined) data.currency = cur.toUpperCase();
    if (store !== undefined) data.storeId = store;
    if (chan !== undefined) data.channel = chan;
    if (tot !== undefined) data.total = tot;
    const item: Record<string, unknown> = { sku: s };
    if (n !== undefined) item.name = n;
    if (cat !== undefined) item.category = cat;
    if (b !== undefined) item.brand = b;
    item.quantity = qty;
    item.unitPrice = price;
    data.item = item;
    return { line, key, data, error: null };
  };
}
