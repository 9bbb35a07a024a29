import { z } from 'zod';

/** A wait may be zero (a no-op) and at most a year; outside that range it is a 422 naming the path (see service). */
export const MAX_WAIT_HOURS = 8760;

const waitStep = z.strictObject({ type: z.literal('wait'), hours: z.number() });
const sendStep = z.strictObject({ type: z.literal('send'), channel: z.enum(['email', 'sms']), templateId: z.uuid() });
export const step = z.discriminatedUnion('type', [waitStep, sendStep]);
export type Step = z.infer<typeof step>;

export const trigger = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('segmentEntry'), segmentId: z.uuid() }),
  z.strictObject({ type: z.literal('event'), eventType: z.string().trim().min(1).max(200) }),
  z.strictObject({ type: z.literal('purchase') }),
]);
export type Trigger = z.infer<typeof trigger>;

// The segment node is checked by the segment compiler (422 naming the path), not here.
const exitWhen = z.union([z.literal('purchased'), z.record(z.string(), z.unknown())]);

export const createAutomationBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  trigger,
  /** cron (5 or 6 fields), read in the workspace's time zone; segmentEntry only; default hourly. */
  schedule: z.string().trim().min(1).max(120).optional(),
  steps: z.array(step).min(1).max(50),
  exitWhen: exitWhen.nullable().optional(),
  reentryAfterDays: z.number().int().min(0).max(3650).nullable().optional(),
  enabled: z.boolean().default(true),
});
export type CreateAutomation = z.infer<typeof createAutomationBody>;

export const patchAutomationBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    enabled: z.boolean(),
    schedule: z.string().trim().min(1).max(120),
    exitWhen: exitWhen.nullable(),
    reentryAfterDays: z.number().int().min(0).max(3650).nullable(),
  })
  .partial();
export type PatchAutomation = z.infer<typeof patchAutomationBody>;

export const DEFAULT_SCHEDULE = '0 * * * *';

export interface Automation {
  id: string;
  workspaceId: string;
  name: string;
  trigger: Trigger | { type: 'segmentEntry'; segmentId: null };
  schedule: string | null;
  steps: Step[];
  exitWhen: 'purchased' | Record<string, unknown> | null;
  reentryAfterDays: number | null;
  enabled: boolean;
  lastEvaluatedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}
