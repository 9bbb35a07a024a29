import { DateTime } from 'luxon';
import type { z } from 'zod';
import { AppError, ErrorDetail } from '../errors';
import { batchCustomerRow } from '../customers/schema';
import { toColumns } from '../customers/repo';
import { normalizeRef } from '../customers/identity';
import { purchaseBody } from '../purchases/schema';
import { fastPurchaseConverter } from './fast-rows';
import { CUSTOMER_REF_FIELDS, FIELDS, ImportKind, ImportOptions, REQUIRED } from './schema';

/** For each column of the file, the field it fills (or null: ignored). */
export type Columns = Array<string | null>;

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/**
 * Reads the header: a column named in `mapping` fills the field it maps to; otherwise a column
 * whose name is a field's (ignoring case, spaces, _ and -: "order_id" is orderId) fills it;
 * `attributes.<key>` columns of a customer file fill attributes; a column mapped to "" is ignored,
 * as is any other column. A
 * missing required column, a field filled twice, or a mapping naming an unknown field or a
 * column the file lacks is a 422 naming them.
 */
export function resolveHeader(kind: ImportKind, header: string[], mapping: Record<string, string>): Columns {
  const fields = FIELDS[kind];
  const bySquash = new Map(fields.map((f) => [squash(f), f]));
  const problems: ErrorDetail[] = [];
  const isField = (f: string) => fields.includes(f) || (kind === 'customers' && /^attributes\.[^.]{1,100}$/.test(f));
  for (const [col, field] of Object.entries(mapping)) {
    if (!header.includes(col)) problems.push({ path: `mapping.${col}`, message: `the file has no column "${col}"` });
    if (field !== '' && !isField(field)) problems.push({ path: `mapping.${col}`, message: `"${field}" is not a ${kind} field (${fields.join(', ')})` });
  }
  const cols: Columns = header.map((raw) => {
    const name = raw.trim();
    // Mapped to "": ignored, whatever its name.
    if (mapping[raw] !== undefined) return mapping[raw] || null;
    if (isField(name)) return name;
    return bySquash.get(squash(name)) ?? null;
  });
  const seen = new Set<string>();
  cols.forEach((f, i) => {
    if (!f) return;
    if (seen.has(f)) problems.push({ path: `header.${i + 1}`, message: `column "${header[i]}" fills ${f}, which another column fills already` });
    seen.add(f);
  });
  for (const f of REQUIRED[kind]) if (!seen.has(f)) problems.push({ path: 'header', message: `missing required column ${f}` });
  if (kind === 'purchases' && !CUSTOMER_REF_FIELDS.some((f) => seen.has(f))) {
    problems.push({ path: 'header', message: `missing a customer column: one of ${CUSTOMER_REF_FIELDS.join(', ')}` });
  }
  if (problems.length) throw new AppError('unprocessable', `the header does not fit a ${kind} import`, problems);
  return cols;
}

/** One staged row: its key (orderId or externalId) and what the API would take, or why it is rejected. */
export interface StagedRow {
  line: number;
  key: string | null;
  data: Record<string, unknown> | null;
  error: string | null;
}

const NUMBER = /^-?\d+(\.\d+)?$/;
const ISO_OFFSET = /^(\d{4})-(\d{2})-(\d{2})T([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An ISO-8601 time with its offset, as the API takes it, checked without Luxon (a third of the
 * parse's CPU on a 2M-row file): the calendar date must exist, as Postgres will check.
 */
function isoWithOffset(s: string): boolean {
  const m = ISO_OFFSET.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const at = new Date(Date.UTC(y, mo - 1, d));
  return at.getUTCFullYear() === y && at.getUTCMonth() === mo - 1 && at.getUTCDate() === d;
}
const INTEGER = /^-?\d+$/;

/** Where zod says `items.0.quantity`, the file says `quantity`. */
const columnOf = (path: string) =>
  path.replace(/^items\.0\./, '').replace(/^customer\.(externalId|email|phone)$/, (_m, f: string) => `customer${f[0]!.toUpperCase()}${f.slice(1)}`);

function issue(error: z.ZodError): string {
  const i = error.issues[0]!;
  return `${columnOf(i.path.map(String).join('.')) || 'row'}: ${i.message}`;
}

/**
 * A file's date as the API's ISO form, in the import's format and zone; null when it does not read.
 * Rows of one order share their time, and Luxon's fromFormat is ~40 µs a call: the last answers are kept.
 */
export function dateReader(opts: ImportOptions): (s: string) => string | null {
  const parser = opts.dateFormat ? DateTime.buildFormatParser(opts.dateFormat) : null;
  const seen = new Map<string, string | null>();
  return (s) => {
    let iso = seen.get(s);
    if (iso !== undefined) return iso;
    const d = parser ? DateTime.fromFormatParser(s, parser, { zone: opts.timezone, setZone: true }) : DateTime.fromISO(s, { zone: opts.timezone, setZone: true });
    iso = d.isValid ? d.toISO({ suppressMilliseconds: true }) : null;
    if (seen.size >= 4096) seen.clear();
    seen.set(s, iso);
    return iso;
  };
}

/** `full`: every row through the API schema (tests compare the fast path of fast-rows.ts with it). */
export function rowConverter(kind: ImportKind, cols: Columns, opts: ImportOptions, { full = false } = {}) {
  const width = cols.length;
  const toIso = dateReader(opts);
  const fast = kind === 'purchases' && !full ? fastPurchaseConverter(cols, opts.dateFormat ? toIso : null) : null;
  const cell = (record: string[]) => {
    const out: Record<string, string> = {};
    cols.forEach((f, i) => {
      const v = record[i]?.trim();
      if (f && v) out[f] = v;
    });
    return out;
  };

  const purchase = (line: number, c: Record<string, string>): StagedRow => {
    const key = c.orderId ?? null;
    const fail = (error: string): StagedRow => ({ line, key, data: null, error });
    for (const f of ['quantity'] as const) if (c[f] !== undefined && !INTEGER.test(c[f]!)) return fail(`${f}: "${c[f]}" is not a whole number`);
    for (const f of ['unitPrice', 'total'] as const) if (c[f] !== undefined && !NUMBER.test(c[f]!)) return fail(`${f}: "${c[f]}" is not a number`);
    if (!c.customerExternalId && !c.customerEmail && !c.customerPhone) return fail('no customer: customerExternalId, customerEmail or customerPhone is empty');
    let occurredAt: string | undefined;
    if (c.occurredAt !== undefined && !opts.dateFormat && isoWithOffset(c.occurredAt)) occurredAt = c.occurredAt;
    else if (c.occurredAt !== undefined) {
      const iso = toIso(c.occurredAt);
      if (iso === null) return fail(`occurredAt: "${c.occurredAt}" is not a date in ${opts.dateFormat ? `the format ${opts.dateFormat}` : 'ISO-8601 (or pass dateFormat)'}`);
      occurredAt = iso;
    }
    const quantity = c.quantity === undefined ? undefined : Number(c.quantity);
    const unitPrice = c.unitPrice === undefined ? undefined : Number(c.unitPrice);
    const total = c.total === undefined ? undefined : Number(c.total);
    const customer = { externalId: c.customerExternalId, email: c.customerEmail, phone: c.customerPhone };
    const item = { sku: c.sku, name: c.name, category: c.category, brand: c.brand, quantity, unitPrice };
    const head = { orderId: c.orderId, customer, occurredAt, currency: c.currency?.toUpperCase(), storeId: c.storeId, channel: c.channel?.toLowerCase() };
    // The API's own schema decides, on this row as a one-item purchase.
    const parsed = purchaseBody.safeParse({ ...head, total: total ?? 0, items: [item] });
    if (!parsed.success) return fail(issue(parsed.error));
    try {
      normalizeRef(parsed.data.customer, 'customer');
    } catch (err) {
      if (err instanceof AppError) return fail(`customerPhone: ${err.details[0]?.message ?? err.message}`);
      throw err;
    }
    const { items, total: _t, ...rest } = parsed.data;
    return { line, key, data: { ...rest, ...(total === undefined ? {} : { total }), item: items![0] }, error: null };
  };

  const customer = (line: number, c: Record<string, string>): StagedRow => {
    const key = c.externalId ?? null;
    const row: Record<string, unknown> = {};
    const attributes: Record<string, string> = {};
    for (const [f, v] of Object.entries(c)) {
      if (f.startsWith('attributes.')) attributes[f.slice(11)] = v;
      else row[f] = v;
    }
    if (Object.keys(attributes).length) row.attributes = attributes;
    if (!key) return { line, key, data: null, error: 'externalId: empty' };
    const parsed = batchCustomerRow.safeParse(row);
    if (!parsed.success) return { line, key, data: null, error: issue(parsed.error) };
    try {
      const { externalId: _x, ...fields } = parsed.data;
      toColumns(fields);
    } catch (err) {
      if (err instanceof AppError) return { line, key, data: null, error: `phone: ${err.details[0]?.message ?? err.message}` };
      throw err;
    }
    return { line, key, data: parsed.data, error: null };
  };

  return (line: number, record: string[]): StagedRow => {
    if (record.length !== width) {
      const c = cell(record);
      return { line, key: (kind === 'purchases' ? c.orderId : c.externalId) ?? null, data: null, error: `the row has ${record.length} fields; the header has ${width}` };
    }
    if (kind === 'customers') return customer(line, cell(record));
    return fast?.(line, record) ?? purchase(line, cell(record));
  };
}
