import fc from 'fast-check';
import { fastPurchaseConverter } from '../src/imports/fast-rows';
import { dateReader, resolveHeader, rowConverter } from '../src/imports/rows';
import type { ImportOptions } from '../src/imports/schema';

/**
 * The fast row check (src/imports/fast-rows.ts) against the full one (the API's schema): on
 * generated rows near every bound, a row the fast path takes is one the schema takes, staged
 * with the same data; a row it declines goes through the full check, so the error messages
 * stay the schema's.
 */
const HEADER = ['orderId', 'customerExternalId', 'occurredAt', 'sku', 'name', 'category', 'brand', 'quantity', 'unitPrice', 'total', 'currency', 'storeId', 'channel'];

const plain = fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9 -]{0,11}$/);
const text = (max: number) => fc.oneof({ arbitrary: plain, weight: 8 }, fc.string({ maxLength: max + 2 }), fc.constantFrom('', ' ', 'x'.repeat(max), 'x'.repeat(max + 1), ' a ', 'ß', '\u00e9t\u00e9'));
const number = fc.oneof(
  { arbitrary: fc.tuple(fc.integer({ min: 1, max: 999 }), fc.integer({ min: 0, max: 99 })).map(([a, b]) => `${a}.${String(b).padStart(2, '0')}`), weight: 6 },
  { arbitrary: fc.integer({ min: 1, max: 50 }).map(String), weight: 6 },
  fc.constantFrom('0', '1', '-1', '0.5', '1.005', '12.34', '007', '1e3', '99999999999.99', '100000000000', '100000000000.01', '1000000', '1000001', '', '1.', '.5', '3.999'),
  fc.double({ min: 0, max: 2e11, noNaN: true }).map(String),
  fc.integer({ min: -5, max: 2_000_000 }).map(String),
  fc.tuple(fc.integer({ min: 0, max: 99_999_999 }), fc.integer({ min: 0, max: 99 })).map(([a, b]) => `${a}.${String(b).padStart(2, '0')}`),
);
const iso = fc.oneof(
  { arbitrary: fc.date({ min: new Date('2000-01-01'), max: new Date('2030-01-01'), noInvalidDate: true }).map((d) => d.toISOString().replace('.000Z', 'Z')), weight: 6 },
  fc.date({ min: new Date('0900-01-01'), max: new Date('9999-12-31'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2021-02-29T10:00:00Z', '2024-02-29T10:00:00Z', '2021-03-04T05:06Z', '2021-03-04T05:06:07+01:00', '2021-03-04T05:06:07-00:00', '2021-03-04T05:06:07+0100', '2021-03-04T24:00:00Z', '2021-03-04T05:06:07.1234567891Z', '2021-04-31T00:00:00Z', '2021-03-04 05:06:07', ''),
);
const row = fc.tuple(
  text(200), text(200), iso, text(100), text(500), text(200), text(200), number, number,
  fc.oneof(fc.constant(''), number), fc.constantFrom('', 'usd', 'USD', 'USD', 'USD', 'US', 'EURO', 'ßss', 'u1d'), text(200), fc.constantFrom('', 'pos', 'pos', 'pos', 'POS', 'Online', 'web', 'online '),
);

function compare(opts: ImportOptions, header: string[], records: fc.Arbitrary<string[]>) {
  const cols = resolveHeader('purchases', header, opts.mapping);
  const both = rowConverter('purchases', cols, opts);
  const full = rowConverter('purchases', cols, opts, { full: true });
  const fastOnly = fastPurchaseConverter(cols, opts.dateFormat ? dateReader(opts) : null);
  let fastTaken = 0;
  let runs = 0;
  fc.assert(
    fc.property(records, (rec) => {
      runs++;
      const a = both(2, rec);
      const b = full(2, rec);
      const f = fastOnly(2, rec);
      if (f) {
        fastTaken++;
        expect(b.error).toBeNull();
        expect(f).toEqual(a);
      }
      expect(a.error).toBe(b.error);
      expect(a.key).toBe(b.key);
      expect(JSON.parse(JSON.stringify(a.data))).toEqual(JSON.parse(JSON.stringify(b.data)));
    }),
    { numRuns: 3000 },
  );
  return { fastTaken, runs };
}

describe('import rows: the fast check agrees with the API schema', () => {
  test('ISO times', () => {
    const r = compare({ mapping: {}, dateFormat: null, timezone: 'UTC', encoding: 'utf-8' }, HEADER, row.map((t) => [...t]));
    // Some rows are valid, or the comparison says little.
    expect(r.fastTaken).toBeGreaterThan(r.runs / 50);
  });

  test('the same rows, wholly plausible: the fast path takes them', () => {
    const cols = resolveHeader('purchases', HEADER, {});
    const opts: ImportOptions = { mapping: {}, dateFormat: null, timezone: 'UTC', encoding: 'utf-8' };
    const conv = rowConverter('purchases', cols, opts);
    const out = conv(7, ['o-1', 'c-1', '2021-03-04T05:06:07Z', 'SKU-1', 'Item', 'Toys', 'Acme', '2', '9.99', '', 'usd', 's1', 'POS']);
    expect(out).toEqual({ line: 7, key: 'o-1', error: null, data: { orderId: 'o-1', customer: { externalId: 'c-1' }, occurredAt: '2021-03-04T05:06:07Z', currency: 'USD', storeId: 's1', channel: 'pos', item: { sku: 'SKU-1', name: 'Item', category: 'Toys', brand: 'Acme', quantity: 2, unitPrice: 9.99 } } });
  });

  test('a date format and zone', () => {
    const dates = fc.oneof(
      fc.date({ min: new Date('1990-01-01'), max: new Date('2030-12-31'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 19).replace('T', ' ')),
      fc.constantFrom('2021-03-28 01:30:00', '2021-02-29 10:00:00', '2021-13-01 00:00:00', '12/01/2011 08:26', ''),
    );
    const rec = fc.tuple(fc.constantFrom('536365', 'C536379', ''), fc.constantFrom('17850', '', '12583.0'), dates, fc.constantFrom('85123A', 'POST', ''), number, number).map(([o, c, d, s, q, p]) => [o, s, 'desc', q, d, p, c, 'United Kingdom']);
    const header = ['InvoiceNo', 'StockCode', 'Description', 'Quantity', 'InvoiceDate', 'UnitPrice', 'CustomerID', 'Country'];
    const mapping = { InvoiceNo: 'orderId', StockCode: 'sku', Description: 'name', Quantity: 'quantity', InvoiceDate: 'occurredAt', UnitPrice: 'unitPrice', CustomerID: 'customerExternalId' };
    const r = compare({ mapping, dateFormat: 'yyyy-MM-dd HH:mm:ss', timezone: 'Europe/London', encoding: 'utf-8' }, header, rec);
    expect(r.fastTaken).toBeGreaterThan(r.runs / 50);
  });
});
