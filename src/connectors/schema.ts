import { z } from 'zod';
import { CONNECTOR_TYPES } from './adapters';

export const createConnectorBody = z.strictObject({
  type: z.enum(CONNECTOR_TYPES),
  name: z.string().trim().min(1).max(200),
  /** The key the platform signs with (Shopify shows it under its webhooks; WooCommerce takes the one you type). */
  secret: z.string().min(8, 'must be at least 8 characters').max(500),
});
export type CreateConnector = z.infer<typeof createConnectorBody>;

export const OUTCOMES = ['pending', 'stored', 'duplicate', 'ignored', 'skipped', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];
