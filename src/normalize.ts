import { createHash } from 'node:crypto';
import { parsePhoneNumberFromString, CountryCode } from 'libphonenumber-js';
import { IANAZone } from 'luxon';
import { z } from 'zod';

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

/** E.164, or null when the number cannot be read as a valid one. */
export function normalizePhone(phone: string, defaultCountry?: string): string | null {
  const parsed = parsePhoneNumberFromString(phone.trim(), (defaultCountry?.toUpperCase() as CountryCode) || undefined);
  return parsed && parsed.isValid() ? parsed.number : null;
}

export const isTimezone = (tz: string): boolean => IANAZone.isValidZone(tz);

/** Suppression entries hold only this hash of the normalised address. */
export const addressHash = (address: string): Buffer => createHash('sha256').update(address).digest();

export const zTimezone = z.string().max(64).refine(isTimezone, 'must be an IANA time zone such as Europe/London');
export const zEmail = z.string().max(320).email().transform(normalizeEmail);
export const zIsoDateTime = z.iso.datetime({ offset: true });
export const zMoney = z.number().finite().nonnegative().max(1e11).refine((n) => Math.abs(Math.round(n * 100) - n * 100) < 1e-6, 'at most 2 decimal places');
export const zCurrency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO-4217 code such as USD');
