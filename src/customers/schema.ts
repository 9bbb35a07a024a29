import { z } from 'zod';
import { zTimezone } from '../normalize';

const consent = z.enum(['subscribed', 'unsubscribed']);
const text = (max = 200) => z.string().trim().max(max);

/** Profile fields of PUT /v1/customers/:externalId; null clears a field. */
export const customerFields = z.strictObject({
  email: z.string().trim().max(320).email().nullable().optional(),
  phone: text(40).nullable().optional(),
  firstName: text().nullable().optional(),
  lastName: text().nullable().optional(),
  birthDate: z.iso.date().nullable().optional(),
  gender: text(40).nullable().optional(),
  city: text().nullable().optional(),
  region: text().nullable().optional(),
  country: z.string().regex(/^[A-Za-z]{2}$/, 'must be an ISO-3166 alpha-2 code').transform((s) => s.toUpperCase()).nullable().optional(),
  postalCode: text(20).nullable().optional(),
  timezone: zTimezone.nullable().optional(),
  emailConsent: consent.optional(),
  smsConsent: consent.optional(),
  attributes: z.record(z.string().min(1).max(100), z.union([z.string().max(2000), z.number().finite(), z.boolean()])).optional(),
});
export type CustomerFields = z.infer<typeof customerFields>;

export const externalIdSchema = z.string().min(1).max(200);

export const batchCustomersBody = z.strictObject({
  customers: z.array(z.unknown()).min(1).max(1000, 'at most 1000 customers per batch'),
});

export const batchCustomerRow = customerFields.extend({ externalId: externalIdSchema });

/** How purchases and events name their customer: externalId, else email, else phone. */
export const customerRef = z
  .strictObject({
    externalId: externalIdSchema.optional(),
    email: z.string().trim().max(320).email().optional(),
    phone: text(40).optional(),
  })
  .refine((r) => r.externalId || r.email || r.phone, 'customer needs an externalId, email or phone');
export type CustomerRef = z.infer<typeof customerRef>;
