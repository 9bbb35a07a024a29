import type { Knex } from 'knex';
import { onErasure } from '../customers/erasure';

export type MessageEventType = 'sent' | 'delivered' | 'failed' | 'opened' | 'clicked' | 'unsubscribed' | 'converted';

export interface MessageEvent {
  workspaceId: string;
  messageId: string;
  type: MessageEventType;
  occurredAt: Date;
  data?: Record<string, unknown>;
}

/**
 * Appends message events in the caller's transaction, beside the state change they describe,
 * so that the webhook feed sees exactly the changes that were committed. Ids, types and times
 * only: no addresses or bodies.
 */
export async function recordMessageEvents(trx: Knex | Knex.Transaction, events: MessageEvent[]): Promise<void> {
  if (!events.length) return;
  await trx('message_events').insert(
    events.map((e) => ({
      workspace_id: e.workspaceId,
      message_id: e.messageId,
      type: e.type,
      occurred_at: e.occurredAt,
      data: JSON.stringify(e.data ?? {}),
      created_at: e.occurredAt,
    })),
  );
}

/** Erasure: a click event's URL often carries the address (`?email=`); the event stays, its URL goes. */
onErasure(async (trx, workspaceId, customerId) => {
  await trx.raw(
    `UPDATE message_events SET data = data - 'url'
      WHERE workspace_id = ? AND data -> 'url' IS NOT NULL AND message_id IN (SELECT id FROM messages WHERE workspace_id = ? AND customer_id = ?)`,
    [workspaceId, workspaceId, customerId],
  );
});
