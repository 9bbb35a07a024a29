import { z } from 'zod';
import { customerRef } from '../customers/schema';
import { zIsoDateTime } from '../normalize';

export const eventBody = z.strictObject({
  /** Optional client id: a replayed event with the same id is stored once. */
  eventId: z.string().min(1).max(200).optional(),
  customer: customerRef,
  type: z.string().min(1).max(100).regex(/^[A-Za-z0-9_.:\-]+$/, 'letters, digits and _ . : - only'),
  channel: z.string().max(100).optional(),
  device: z.string().max(100).optional(),
  occurredAt: zIsoDateTime,
  properties: z.record(z.string(), z.unknown()).optional(),
});
export type EventInput = z.infer<typeof eventBody>;

export const batchEventsBody = z.strictObject({
  events: z.array(z.unknown()).min(1).max(1000, 'at most 1000 events per batch'),
});
