import type { Db } from '../db';
import { bindings, toMoney } from '../db';

export type TimelineType = 'purchase' | 'refund' | 'event' | 'message' | 'consent';

/** Where a page ends: entries sort by (at, type, id) descending. */
export interface TimelineCursor {
  at: string;
  type: TimelineType;
  id: string;
}

/**
 * A customer's history, newest first, from five sources in one statement: purchases (with their
 * items), refunds, events, messages (status, skip reason, engagement) and consent changes (the
 * consent_changes table, which a trigger on customers fills whoever changes consent). Each branch
 * takes at most a page past the cursor, by the customer's own index on that table, and the union
 * is cut to the page: the cost is a page per source, whatever the customer's history.
 */
export async function timeline(db: Db, customerId: string, limit: number, after?: TimelineCursor) {
  const n = limit + 1;
  // Each branch's own (at, type, id) against the cursor; the type is a constant per branch.
  const past = (at: string, type: TimelineType, id: string) => (after ? `AND (${at}, '${type}', ${id}) < (?::timestamptz, ?::text, ?::bigint)` : '');
  const cur = after ? [after.at, after.type, after.id] : [];
  const { rows } = await db.raw(
    `SELECT * FROM (
      (SELECT p.occurred_at AS at, 'purchase' AS type, p.id,
         json_build_object('orderId', p.order_id, 'total', p.total, 'refunded', p.refunded, 'currency', p.currency, 'storeId', p.store_id, 'channel', p.channel,
           'items', coalesce((SELECT json_agg(json_build_object('sku', i.sku, 'name', i.name, 'category', i.category, 'brand', i.brand, 'quantity', i.quantity, 'unitPrice', i.unit_price) ORDER BY i.id)
                              FROM purchase_items i WHERE i.purchase_id = p.id AND i.workspace_id = p.workspace_id), '[]'::json)) AS data
       FROM purchases p WHERE p.customer_id = ? ${past('p.occurred_at', 'purchase', 'p.id')} ORDER BY p.occurred_at DESC, p.id DESC LIMIT ?)
      UNION ALL
      (SELECT r.created_at, 'refund', r.id, json_build_object('orderId', p.order_id, 'amount', r.amount, 'refundId', r.refund_id)
       FROM purchases p JOIN refunds r ON r.purchase_id = p.id AND r.workspace_id = p.workspace_id WHERE p.customer_id = ? ${past('r.created_at', 'refund', 'r.id')} ORDER BY r.created_at DESC, r.id DESC LIMIT ?)
      UNION ALL
      (SELECT e.occurred_at, 'event', e.id, json_build_object('eventType', e.type, 'channel', e.channel, 'device', e.device, 'properties', e.properties)
       FROM events e WHERE e.customer_id = ? ${past('e.occurred_at', 'event', 'e.id')} ORDER BY e.occurred_at DESC, e.id DESC LIMIT ?)
      UNION ALL
      (SELECT m.created_at, 'message', m.id,
         json_build_object('messageId', m.id::text, 'channel', m.channel, 'status', m.status, 'skipReason', m.skip_reason, 'error', m.error,
           'campaignId', m.campaign_id, 'automationId', m.automation_id, 'sentAt', m.sent_at, 'deliveredAt', m.delivered_at,
           'openedAt', m.opened_at, 'clickedAt', m.clicked_at, 'unsubscribedAt', m.unsubscribed_at)
       FROM messages m WHERE m.customer_id = ? ${past('m.created_at', 'message', 'm.id')} ORDER BY m.created_at DESC, m.id DESC LIMIT ?)
      UNION ALL
      (SELECT k.at, 'consent', k.id, json_build_object('channel', k.channel, 'value', k.value, 'previous', k.previous)
       FROM consent_changes k WHERE k.customer_id = ? ${past('k.at', 'consent', 'k.id')} ORDER BY k.at DESC, k.id DESC LIMIT ?)
    ) t ORDER BY at DESC, type DESC, id DESC LIMIT ?`,
    bindings([customerId, ...cur, n, customerId, ...cur, n, customerId, ...cur, n, customerId, ...cur, n, customerId, ...cur, n, n]),
  );
  const entries = (rows as Array<{ at: Date; type: TimelineType; id: string; data: Record<string, any> }>).map(entryView);
  const page = entries.slice(0, limit);
  const last = rows[limit - 1] as { at: Date; type: TimelineType; id: string } | undefined;
  return { data: page, next: entries.length > limit && last ? { at: new Date(last.at).toISOString(), type: last.type, id: String(last.id) } : null };
}

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function entryView(r: { at: Date; type: TimelineType; id: string; data: Record<string, any> }) {
  const at = new Date(r.at).toISOString();
  const d = r.data;
  switch (r.type) {
    case 'purchase':
      return {
        at, type: r.type, id: String(r.id), orderId: d.orderId, total: toMoney(d.total), refunded: toMoney(d.refunded), currency: d.currency?.trim() ?? null,
        storeId: d.storeId, channel: d.channel,
        items: (d.items as Array<Record<string, any>>).map((i) => ({ sku: i.sku, name: i.name, category: i.category, brand: i.brand, quantity: i.quantity, unitPrice: toMoney(i.unitPrice) })),
      };
    case 'refund':
      return { at, type: r.type, id: String(r.id), orderId: d.orderId, amount: toMoney(d.amount), refundId: d.refundId };
    case 'event':
      return { at, type: r.type, id: String(r.id), eventType: d.eventType, channel: d.channel, device: d.device, properties: d.properties ?? {} };
    case 'message':
      return {
        at, type: r.type, id: d.messageId, channel: d.channel, status: d.status, skipReason: d.skipReason, error: d.error, campaignId: d.campaignId, automationId: d.automationId,
        sentAt: iso(d.sentAt), deliveredAt: iso(d.deliveredAt), openedAt: iso(d.openedAt), clickedAt: iso(d.clickedAt), unsubscribedAt: iso(d.unsubscribedAt),
      };
    default:
      return { at, type: r.type, id: String(r.id), channel: d.channel, value: d.value, previous: d.previous };
  }
}
