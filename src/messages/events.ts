import type { Knex } from 'knex';

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
