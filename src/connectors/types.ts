import type { IncomingHttpHeaders } from 'node:http';
import type { CustomerFields } from '../customers/schema';
import type { PurchaseInput } from '../purchases/schema';

/**
 * What a delivery maps to: hark's own writes, in the shapes the REST API takes, so that the
 * service (src/connectors/service.ts) stores them through the same code as POST /v1/purchases,
 * POST /v1/purchases/:orderId/refund and PUT /v1/customers/:externalId.
 */
export type Write =
  | { kind: 'purchase'; purchase: PurchaseInput }
  /** amount: a decimal string with at most two decimals (summed in cents by the adapter, never as floats). */
  | { kind: 'refund'; orderId: string; refundId: string; amount: string }
  | { kind: 'customer'; externalId: string; fields: CustomerFields }
  /** Nothing to store, and why (shown as the delivery's outcome "skipped" with this reason). */
  | { kind: 'skip'; reason: string };

/**
 * One commerce platform. Adding one (Square, Lightspeed) is a new file implementing this and its
 * line in ADAPTERS (src/connectors/adapters.ts); routes, storage, worker and console take it from there.
 */
export interface ConnectorAdapter {
  readonly type: string;
  /** Human name and where its webhooks are configured (shown by the console). */
  readonly label: string;
  readonly setup: string;
  /** Signature of the raw bytes under the connector's secret; must compare in constant time. */
  verify(raw: Buffer, headers: IncomingHttpHeaders, secret: string): boolean;
  /** A request the platform sends unsigned to test the URL (WooCommerce's save-time ping): answered 200, stored nowhere. */
  isPing?(raw: Buffer, headers: IncomingHttpHeaders): boolean;
  /** The event's topic, e.g. "orders/create"; "" when the platform did not name one. */
  topic(headers: IncomingHttpHeaders): string;
  /** The platform's id of this delivery, for de-duplication; undefined when it sends none. */
  deliveryName(headers: IncomingHttpHeaders): string | undefined;
  /** Topics map() understands; any other is recorded as ignored without being queued. */
  readonly topics: readonly string[];
  /** The writes a delivery of a known topic comes to (pure: no I/O). Throws on a body it cannot read. */
  map(topic: string, body: Record<string, unknown>): Write[];
}
