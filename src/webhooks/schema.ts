import { z } from 'zod';

export const WEBHOOK_EVENT_TYPES = ['sent', 'delivered', 'failed', 'opened', 'clicked', 'unsubscribed', 'converted'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
  .max(2000);

export const createEndpointBody = z.strictObject({
  url: httpUrl,
  description: z.string().max(500).optional(),
  /** Omitted or null: every event type. */
  eventTypes: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length).nullable().optional(),
});

export const patchEndpointBody = createEndpointBody.partial().extend({ disabled: z.boolean().optional() });

export const rotateBody = z.strictObject({
  /** How long the previous secret keeps signing (a second signature), so receivers can switch over. */
  graceHours: z.number().min(0).max(24 * 7).default(24),
});

export const deliveriesQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional(),
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
});

export type CreateEndpoint = z.infer<typeof createEndpointBody>;
export type PatchEndpoint = z.infer<typeof patchEndpointBody>;
