import { z } from 'zod';

export const inboxQuery = z.object({
  channel: z.enum(['email', 'sms']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional(),
});

export const inboxCursor = z.object({ id: z.string().regex(/^\d{1,19}$/) });

const EMAIL = z.string().email();
const E164 = /^\+[1-9]\d{6,14}$/;

/** An address a test goes to: an email address or an E.164 phone number (which one must fit the template, checked later: 422). */
export const testAddress = z
  .string()
  .trim()
  .max(320)
  .refine((v) => E164.test(v) || EMAIL.safeParse(v).success, 'must be an email address or an E.164 phone number (+15125550100)');

export const testSendBody = z.object({
  to: z.array(testAddress).min(1, 'give 1 to 5 addresses').max(5, 'at most 5 addresses'),
  customerExternalId: z.string().min(1).max(255).optional(),
});
export type TestSendBody = z.infer<typeof testSendBody>;

export const isPhone = (v: string) => E164.test(v);
