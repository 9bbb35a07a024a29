import type { Db } from '../db';
import { consumeFeed } from '../feed';
import * as repo from './repo';
import type { CreateEndpoint, PatchEndpoint } from './schema';
import { newSecret, signedHeaders } from './sign';
import { checkWebhookUrl } from './address';
import { attemptError, postWebhook } from './post';

export const WEBHOOK_FEED_CONSUMER = 'webhooks';

/** The public shape of an endpoint; the secret only where it was just made (create, rotate). */
export function endpointView(e: repo.EndpointRow, withSecret = false) {
  return {
    id: e.id,
    url: e.url,
    description: e.description,
    eventTypes: e.event_types,
    disabled: e.disabled,
    ...(withSecret ? { secret: e.secret } : {}),
    previousSecretExpiresAt: e.previous_secret_expires_at && e.previous_secret ? new Date(e.previous_secret_expires_at).toISOString() : null,
    createdAt: new Date(e.created_at).toISOString(),
    updatedAt: new Date(e.updated_at).toISOString(),
  };
}

export async function createEndpoint(db: Db, workspaceId: string, body: CreateEndpoint, now: Date, allowPrivate = false) {
  await checkWebhookUrl(body.url, allowPrivate);
  const row = await repo.insertEndpoint(db, { workspace_id: workspaceId, url: body.url, description: body.description ?? null, event_types: body.eventTypes ?? null, secret: newSecret() }, now);
  return endpointView(row, true);
}

export async function patchEndpoint(db: Db, workspaceId: string, id: string, body: PatchEndpoint, now: Date, allowPrivate = false) {
  if (body.url !== undefined) await checkWebhookUrl(body.url, allowPrivate);
  const patch: Record<string, unknown> = { updated_at: now };
  if (body.url !== undefined) patch.url = body.url;
  if (body.description !== undefined) patch.description = body.description;
  if (body.eventTypes !== undefined) patch.event_types = body.eventTypes;
  if (body.disabled !== undefined) patch.disabled = body.disabled;
  return endpointView(await repo.updateEndpoint(db, workspaceId, id, patch));
}

/**
 * A new secret signs from now on; the old one keeps signing beside it (a second signature in
 * the same header) until the grace period ends, so receivers can switch without losing messages.
 */
export async function rotateSecret(db: Db, workspaceId: string, id: string, graceHours: number, now: Date) {
  return db.transaction(async (trx) => {
    const cur = await repo.requireEndpoint(trx, workspaceId, id, true);
    const row = await repo.updateEndpoint(trx, workspaceId, id, {
      secret: newSecret(),
      previous_secret: graceHours > 0 ? cur.secret : null,
      previous_secret_expires_at: graceHours > 0 ? new Date(now.getTime() + graceHours * 3600_000) : null,
      updated_at: now,
    });
    return endpointView(row, true);
  });
}

/**
 * Turns committed message events into pending deliveries, from the message_events feed (its
 * cursor moves in the same transaction as the inserts). Returns the new deliveries' ids.
 */
export async function fanOutEvents(db: Db, now: Date, opts: { limit?: number; maxBatches?: number } = {}): Promise<string[]> {
  const limit = opts.limit ?? 2000;
  const out: string[] = [];
  for (let i = 0; i < (opts.maxBatches ?? 50); i++) {
    const { processed, result } = await consumeFeed(db, WEBHOOK_FEED_CONSUMER, 'message_events', (trx, rows) => repo.insertDeliveries(trx, rows.map((r) => String(r.id)), now), { now, limit });
    out.push(...(result ?? []));
    if (processed < limit) break;
  }
  return out;
}

export interface AttemptOptions {
  attempt: number; // 1-based
  maxAttempts: number;
  nextDelayMs: number; // until the next attempt, for the sweeper's bookkeeping
  timeoutMs?: number;
  /** WEBHOOK_ALLOW_PRIVATE: deliver to loopback and private addresses too (development, tests). */
  allowPrivate?: boolean;
}

export type AttemptResult = 'delivered' | 'retry' | 'failed' | 'gone';

/**
 * One HTTP attempt. 2xx is success; anything else (3xx included: the spec says not to follow
 * redirects), a timeout or a network error is retried until maxAttempts, then the delivery fails.
 * Each attempt is signed afresh with the current timestamp; webhook-id stays the same.
 */
export async function attemptDelivery(db: Db, deliveryId: string, now: Date, o: AttemptOptions): Promise<AttemptResult> {
  const d = await repo.loadDelivery(db, deliveryId);
  if (!d || d.status !== 'pending') return 'gone';
  const body = JSON.stringify(d.payload);
  const secrets = [d.secret, ...(d.previous_secret && d.previous_secret_expires_at && new Date(d.previous_secret_expires_at) > now ? [d.previous_secret] : [])];
  let code: number | null = null;
  let error: string | null = null;
  let refused = false;
  if (d.disabled) {
    error = 'endpoint disabled';
  } else {
    try {
      const headers = { 'content-type': 'application/json', 'user-agent': 'hark-webhooks/1', ...signedHeaders(d.webhook_id, now, body, secrets) };
      code = await postWebhook(d.url, headers, body, { timeoutMs: o.timeoutMs ?? 10_000, allowPrivate: o.allowPrivate ?? false });
      if (code >= 200 && code < 300) {
        await repo.recordAttempt(db, deliveryId, { status: 'delivered', code, error: null, nextAt: null }, now);
        return 'delivered';
      }
      error = `HTTP ${code}`;
    } catch (err) {
      // A refused address fails the delivery at once: retrying would only probe it again.
      ({ error, final: refused } = attemptError(err));
    }
  }
  const final = o.attempt >= o.maxAttempts || d.disabled || refused;
  await repo.recordAttempt(db, deliveryId, { status: final ? 'failed' : 'pending', code, error, nextAt: final ? null : new Date(now.getTime() + o.nextDelayMs) }, now);
  return final ? 'failed' : 'retry';
}
