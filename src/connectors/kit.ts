import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { normalizePhone } from '../normalize';
import type { CustomerFields } from '../customers/schema';

/**
 * Helpers the adapters share: exact money from the platforms' decimal strings, JSON whose large
 * integer ids survive, signatures, and customer references hark's schemas accept.
 */

/** A decimal amount ("199.00", "-5.5", 12.3) as integer cents; more than two decimals round half away from zero. */
export function toCents(v: unknown): bigint {
  const s = typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' ? v.trim() : '';
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) throw new MappingError(`"${String(v).slice(0, 40)}" is not an amount`);
  const frac = (m[3] ?? '').padEnd(3, '0');
  let cents = BigInt(m[2]!) * 100n + BigInt(frac.slice(0, 2));
  if (Number(frac[2]) >= 5) cents += 1n;
  return m[1] === '-' ? -cents : cents;
}

/** Cents as the decimal string they are ("12.30"). */
export function centsToString(c: bigint): string {
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
}

/**
 * The purchase service takes money as a JSON number with at most two decimals (zMoney). A decimal
 * string of at most two decimals converts to the one double whose shortest form is that string,
 * and Postgres reads that form back as the exact numeric, so no amount is rounded on the way:
 * the arithmetic (sums of refund transactions) is done in cents before this.
 */
export const moneyNumber = (v: unknown): number => Number(centsToString(toCents(v)));

/** A body the adapter cannot read: the delivery is reported failed with this message, not retried. */
export class MappingError extends Error {}

/**
 * JSON.parse, except that integers beyond 2^53 (Shopify's ids can be) are kept as strings rather
 * than rounded. Strings are matched first, so digits inside them are left alone.
 */
export function parseJsonKeepingIds(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text); // no long digit run anywhere: nothing to keep
  return JSON.parse(text.replace(/("(?:[^"\\]|\\.)*")|(?<![\d.eE+-])(-?\d{16,})(?![\d.eE])/g, (m, str: string | undefined, n: string | undefined) => (str !== undefined ? str : Number.isSafeInteger(Number(n)) ? m : `"${n}"`)));
}

/** base64 HMAC-SHA256 of the raw bytes, compared in constant time (both Shopify and WooCommerce sign so). */
export function hmacBase64Matches(raw: Buffer, secret: string, given: string | string[] | undefined): boolean {
  if (typeof given !== 'string' || given.length === 0 || given.length > 200) return false;
  const expected = createHmac('sha256', secret).update(raw).digest();
  const got = Buffer.from(given, 'base64');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

export const header = (h: Record<string, string | string[] | undefined>, name: string): string | undefined => {
  const v = h[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined;
};

const zEmail = z.string().trim().max(320).email();
/** An email hark would accept, else undefined (a connector drops what the API would refuse). */
export const usableEmail = (v: unknown): string | undefined => (typeof v === 'string' && zEmail.safeParse(v).success ? v.trim() : undefined);
/** A phone normalisable to E.164, else undefined. */
export const usablePhone = (v: unknown, country?: unknown): string | undefined =>
  (typeof v === 'string' && v.trim() && normalizePhone(v, typeof country === 'string' ? country : undefined)) || undefined;

/** An id as text: numbers as their digits, strings as given (see parseJsonKeepingIds). */
export const idText = (v: unknown): string | undefined => (typeof v === 'number' && Number.isFinite(v) ? String(v) : typeof v === 'string' && v.length ? v : undefined);

export const obj = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const str = (v: unknown, max = 500): string | undefined => (typeof v === 'string' && v.trim() ? v.trim().slice(0, max) : undefined);

/** The contact a platform gives, as raw values; `contactFields` keeps what the API would accept. */
export interface RawContact {
  email?: unknown;
  phone?: unknown;
  firstName: unknown;
  lastName: unknown;
  city: unknown;
  region: unknown;
  country: unknown;
  postalCode: unknown;
}

/** Customer fields from a platform's contact: a usable email and E.164 phone, trimmed names and address, a two-letter country. */
export function contactFields(c: RawContact): CustomerFields {
  const fields: CustomerFields = {};
  const email = usableEmail(c.email);
  const phone = usablePhone(c.phone, c.country);
  if (email) fields.email = email;
  if (phone) fields.phone = phone;
  if (str(c.firstName)) fields.firstName = str(c.firstName, 200);
  if (str(c.lastName)) fields.lastName = str(c.lastName, 200);
  if (str(c.city)) fields.city = str(c.city, 200);
  if (str(c.region)) fields.region = str(c.region, 200);
  if (/^[A-Za-z]{2}$/.test(String(c.country ?? ''))) fields.country = String(c.country).toUpperCase();
  if (str(c.postalCode)) fields.postalCode = str(c.postalCode, 20);
  return fields;
}
