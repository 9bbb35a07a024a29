import { z } from 'zod';
import { timeIdCursor } from '../http/validate';

const name = z.string().trim().min(1).max(200);
const body = z.string().min(1).max(500_000);
const subject = z.string().min(1).max(998);
const format = z.enum(['mjml', 'html', 'text']);

export const createTemplateBody = z.strictObject({
  name,
  channel: z.enum(['email', 'sms']),
  subject: subject.nullable().optional(),
  body,
  format: format.optional(),
});
export type CreateTemplate = z.infer<typeof createTemplateBody>;

export const patchTemplateBody = z
  .strictObject({ name: name.optional(), subject: subject.nullable().optional(), body: body.optional(), format: format.optional() })
  .refine((p) => Object.keys(p).length > 0, 'nothing to change');
export type PatchTemplate = z.infer<typeof patchTemplateBody>;

export const previewBody = z.strictObject({ customerExternalId: z.string().min(1).max(200).optional() });

export const templateCursor = timeIdCursor;
