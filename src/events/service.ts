import { bindings } from '../db';
import type { Db } from '../db';
import { normalizeRef, resolveCustomers } from '../customers/identity';
import { withRetry } from '../tx';
import type { EventInput } from './schema';

/** Stores events set-based; events named by eventId are stored once however often they are sent. */
export async function ingestEvents(db: Db, workspaceId: string, input: EventInput[], now: Date) {
  const refs = input.map((e, i) => normalizeRef(e.customer, `${i}.customer`));
  return withRetry(db, async (trx) => {
    const { ids: customerIds, externalIds } = await resolveCustomers(trx, workspaceId, refs, now);
    const res = await trx.raw(
      `INSERT INTO events (workspace_id, customer_id, event_id, type, channel, device, occurred_at, properties, created_at)
       SELECT ?, c, e, t, ch, d, o, p, ? FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::timestamptz[], ?::jsonb[])
         AS u(c, e, t, ch, d, o, p)
       ON CONFLICT (workspace_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
       RETURNING id, customer_id, type`,
      bindings([
        workspaceId, now, customerIds, input.map((e) => e.eventId ?? null), input.map((e) => e.type), input.map((e) => e.channel ?? null),
        input.map((e) => e.device ?? null), input.map((e) => e.occurredAt), input.map((e) => JSON.stringify(e.properties ?? {})),
      ]),
    );
    return { stored: res.rows as Array<{ id: string; customer_id: string; type: string }>, customerIds, externalIds };
  });
}
