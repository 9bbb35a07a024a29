import { z } from 'zod';
import { zIsoDateTime } from '../normalize';

const uuid = z.uuid().transform((s) => s.toLowerCase());

export const abTestSchema = z.strictObject({
  testPercent: z.number().int().min(5).max(50),
  metric: z.enum(['clicks', 'conversions']),
  decideAfterHours: z.number().min(0).max(24 * 30),
});

export const createCampaignBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200),
    channel: z.enum(['email', 'sms']),
    templateId: uuid,
    segmentIds: z.array(uuid).min(1).max(50),
    excludeSegmentIds: z.array(uuid).max(50).optional(),
    scheduledAt: zIsoDateTime.optional(),
    holdoutPercent: z.number().int().min(0).max(50).optional(),
    variants: z.array(z.strictObject({ templateId: uuid, weight: z.number().int().min(1).max(1000) })).min(2).max(10).optional(),
    abTest: abTestSchema.optional(),
  })
  .refine((b) => !b.abTest || b.variants, { message: 'an A/B test needs at least two variants', path: ['abTest'] });

export type CreateCampaign = z.infer<typeof createCampaignBody>;

export const scheduleBody = z.strictObject({ at: zIsoDateTime });

export const messageStatus = z.enum(['queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'skipped', 'held_out', 'cancelled']);

export const campaignMessagesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional(),
  status: messageStatus.optional(),
});

export const messagesQuery = campaignMessagesQuery.extend({
  customerExternalId: z.string().min(1).max(200).optional(),
  campaignId: uuid.optional(),
  automationId: uuid.optional(),
});

export interface Variant {
  key: string;
  templateId: string;
  weight: number;
}

/** The A/B rule as stored in campaigns.ab_test, with its progress and, once decided, its result. */
export interface AbTestState {
  testPercent: number;
  metric: 'clicks' | 'conversions';
  decideAfterHours: number;
  phase: 'pending' | 'testing' | 'decided';
  decideAt?: string;
  decidedAt?: string;
  winner?: string;
  results?: Array<{ variant: string; sent: number; clicks: number; conversions: number; rate: number }>;
}
