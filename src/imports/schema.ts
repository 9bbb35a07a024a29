import { z } from 'zod';
import { DateTime } from 'luxon';
import { listQuery } from '../http/validate';
import { zTimezone } from '../normalize';

export type ImportKind = 'customers' | 'purchases';

/** The columns of each kind, as API.md names them. `attributes.<key>` adds to a customer's attributes. */
export const FIELDS: Record<ImportKind, readonly string[]> = {
  customers: [
    'externalId', 'email', 'phone', 'firstName', 'lastName', 'birthDate', 'gender', 'city', 'region', 'country', 'postalCode', 'timezone',
    'emailConsent', 'smsConsent',
  ],
  purchases: [
    'orderId', 'customerExternalId', 'customerEmail', 'customerPhone', 'occurredAt', 'total', 'currency', 'storeId', 'channel',
    'sku', 'name', 'category', 'brand', 'quantity', 'unitPrice',
  ],
};

export const REQUIRED: Record<ImportKind, readonly string[]> = {
  customers: ['externalId'],
  purchases: ['orderId', 'occurredAt', 'sku', 'quantity', 'unitPrice'],
};
export const CUSTOMER_REF_FIELDS = ['customerExternalId', 'customerEmail', 'customerPhone'] as const;

/** Encodings a file may come in; anything else must be re-exported. UTF-8 may start with a BOM. */
export const ENCODINGS = ['utf-8', 'windows-1252', 'latin1'] as const;

const mappingJson = z
  .string()
  .max(20000)
  .transform((s, ctx) => {
    try {
      return JSON.parse(s) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be URL-encoded JSON such as {"InvoiceNo":"orderId"}' });
      return z.NEVER;
    }
  })
  .pipe(z.record(z.string().max(200), z.string().max(200)));

export const importQuery = z.strictObject({
  kind: z.enum(['customers', 'purchases']),
  mapping: mappingJson.optional(),
  dateFormat: z
    .string()
    .min(1)
    .max(100)
    .refine((f) => DateTime.fromFormat(DateTime.fromISO('2021-03-04T05:06:07Z', { zone: 'UTC' }).toFormat(f), f, { zone: 'UTC' }).isValid, 'is not a Luxon format that can be read back (e.g. dd/MM/yyyy HH:mm)')
    .optional(),
  timezone: zTimezone.optional(),
  encoding: z.enum(ENCODINGS).default('utf-8'),
});
export type ImportQuery = z.infer<typeof importQuery>;

/** What the worker needs besides the file: stored on the imports row at upload. */
export interface ImportOptions {
  mapping: Record<string, string>;
  dateFormat: string | null;
  timezone: string;
  encoding: (typeof ENCODINGS)[number];
}

export const importListQuery = listQuery;
