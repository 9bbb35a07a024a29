import { z } from 'zod';
import { zCurrency, zTimezone } from '../normalize';

export const createWorkspaceBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  timezone: zTimezone.optional(),
  currency: zCurrency.optional(),
});

export const createKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  scope: z.enum(['admin', 'ingest']),
});

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM, 24-hour');

export const settingsSchema = z.strictObject({
  fromEmail: z.string().email().nullable(),
  fromName: z.string().max(200).nullable(),
  replyTo: z.string().email().nullable(),
  smsFrom: z.string().max(32).nullable(),
  postalAddress: z.string().max(500).nullable(),
  timezone: zTimezone,
  frequencyCap: z.strictObject({ maxMessages: z.number().int().min(1).max(1000), perDays: z.number().int().min(1).max(365) }).nullable(),
  quietHours: z.strictObject({ start: hhmm, end: hhmm }).refine((q) => q.start !== q.end, 'start and end must differ').nullable(),
  /** Days after delivery or click within which a purchase converts a message. */
  attributionWindowDays: z.number().int().min(1).max(90),
});

export const patchSettingsBody = settingsSchema.partial();

export type Settings = z.infer<typeof settingsSchema>;

export const defaultSettings = (timezone: string): Settings => ({
  fromEmail: null,
  fromName: null,
  replyTo: null,
  smsFrom: null,
  postalAddress: null,
  timezone,
  frequencyCap: null,
  quietHours: null,
  attributionWindowDays: 5,
});
