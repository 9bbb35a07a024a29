import type { Knex } from 'knex';
import type { Db } from '../db';
import { consumeFeed } from '../feed';
import { recordMessageEvents } from '../messages/events';
import { applyConversions, markHeldOut, pickConversions } from './attribution-repo';

export const ATTRIBUTION_CONSUMER = 'attribution';

export interface AttributionResult {
  purchases: number;
  converted: number;
  heldOutMarked: number;
}

/**
 * Attributes one batch of purchases, in the feed's transaction (so the cursor moves with the
 * marks, and a crash replays the batch rather than losing it). One purchase converts at most one
 * message, and a message is converted at most once, by its first qualifying purchase. Only
 * purchases of the same customer compete for messages, so rounds take the k-th purchase of
 * every customer (in id order) together: exactly sequential per customer, set-based across them.
 */
export async function attributeBatch(trx: Knex.Transaction, purchases: Array<{ id: string; customerId: string }>, now: Date): Promise<Omit<AttributionResult, 'purchases'>> {
  const rounds: string[][] = [];
  const seen = new Map<string, number>();
  for (const p of [...purchases].sort((a, b) => Number(a.id) - Number(b.id))) {
    const k = seen.get(p.customerId) ?? 0;
    seen.set(p.customerId, k + 1);
    (rounds[k] ??= []).push(p.id);
  }
  let converted = 0;
  for (const ids of rounds) {
    const applied = await applyConversions(trx, await pickConversions(trx, ids));
    // The conversion event is stamped with the time it was attributed: message_events feeds
    // webhooks by insertion order, and a back-dated created_at could be skipped by that feed.
    // The purchase's own time travels in data.
    await recordMessageEvents(
      trx,
      applied.map((p) => ({
        workspaceId: p.workspace_id,
        messageId: String(p.message_id),
        type: 'converted' as const,
        occurredAt: now,
        data: { purchaseId: String(p.purchase_id), purchaseOccurredAt: new Date(p.occurred_at).toISOString(), via: p.by_click ? 'click' : 'delivery' },
      })),
    );
    converted += applied.length;
  }
  const purchaseIds = purchases.map((p) => p.id);
  const heldOutMarked = await markHeldOut(trx, purchaseIds);
  return { converted, heldOutMarked };
}

/**
 * Consumes the purchases feed until it is drained (or maxBatches), attributing each batch.
 * Called by the scheduled job and directly by tests.
 */
export async function runAttribution(db: Db, now: Date, opts: { limit?: number; maxBatches?: number } = {}): Promise<AttributionResult> {
  const total: AttributionResult = { purchases: 0, converted: 0, heldOutMarked: 0 };
  for (let i = 0; i < (opts.maxBatches ?? 100); i++) {
    const { processed, result } = await consumeFeed(
      db,
      ATTRIBUTION_CONSUMER,
      'purchases',
      (trx, rows) => attributeBatch(trx, rows.map((r) => ({ id: String(r.id), customerId: String(r.customer_id) })), now),
      { now, limit: opts.limit ?? 2000 },
    );
    total.purchases += processed;
    total.converted += result?.converted ?? 0;
    total.heldOutMarked += result?.heldOutMarked ?? 0;
    if (processed < (opts.limit ?? 2000)) break;
  }
  return total;
}
