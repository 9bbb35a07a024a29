import { shopify } from './shopify';
import type { ConnectorAdapter } from './types';
import { woocommerce } from './woocommerce';

/** Every platform hark takes webhooks from; a new one is its adapter file and one line here. */
export const ADAPTERS: Readonly<Record<string, ConnectorAdapter>> = { shopify, woocommerce };
export const CONNECTOR_TYPES = Object.keys(ADAPTERS) as [string, ...string[]];
export const adapterOf = (type: string): ConnectorAdapter | undefined => (Object.hasOwn(ADAPTERS, type) ? ADAPTERS[type] : undefined);
