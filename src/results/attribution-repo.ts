import type { Knex } from 'knex';
import { bindings } from '../db';

/**
 * The attribution SQL. A purchase is matched to its customer's messages; the workspace's window
 * (settings.attributionWindowDays, default 5) is read per purchase so that one statement serves
 * purchases of many workspaces.
 */
const PURCHASES = `
  p AS (
    SELECT p.id, p.workspace_id, p.customer_id, p.occurred_at, p.total - p.refunded AS net,
           make_interval(days => coalesce((w.settings->>'attributionWindowDays')::int, 5)) AS win
      FROM purchases p JOIN workspaces w ON w.id = p.workspace_id
     WHERE p.id = ANY(?::bigint[]))`;

export interface Pick {
  purchase_id: string;
  message_id: string;
  workspace_id: string;
  occurred_at: Date;
  net: string;
  by_click: boolean;
}

/**
 * For each purchase, its best unconverted treatment message: one whose click (preferred) or
 * delivery lies within the window before the purchase; among equals the latest touch (last
 * touch). The caller passes at most one purchase per customer, so no two compete for a message.
 */
export async function pickConversions(trx: Knex.Transaction, purchaseIds: string[]): Promise<Pick[]> {
  const { rows } = await trx.raw(
    `WITH ${PURCHASES},
     cand AS (
       SELECT DISTINCT ON (p.id) p.id AS purchase_id, m.id AS message_id, m.workspace_id, p.occurred_at, p.net, q.by_click
         FROM p
         JOIN messages m ON m.customer_id = p.customer_id AND m.workspace_id = p.workspace_id
                        AND m.converted_at IS NULL AND m.status <> 'held_out'
         CROSS JOIN LATERAL (SELECT
             coalesce(p.occurred_at >= m.clicked_at AND p.occurred_at <= m.clicked_at + p.win, false) AS by_click,
             coalesce(p.occurred_at >= m.delivered_at AND p.occurred_at <= m.delivered_at + p.win, false) AS by_delivery) q
        WHERE (q.by_click OR q.by_delivery)
          -- A replayed batch (crash after the marks, before the cursor moved) finds its purchases
          -- already attributed and leaves them be.
          AND NOT EXISTS (SELECT 1 FROM messages d WHERE d.conversion_purchase_id = p.id AND d.workspace_id = p.workspace_id AND d.status <> 'held_out')
        ORDER BY p.id, q.by_click DESC, (CASE WHEN q.by_click THEN m.clicked_at ELSE m.delivered_at END) DESC, m.id DESC)
     SELECT * FROM cand`,
    bindings([purchaseIds]),
  );
  return rows as Pick[];
}

/** Marks the picks converted; the guard on converted_at keeps a message to its first purchase. */
export async function applyConversions(trx: Knex.Transaction, picks: Pick[]): Promise<Pick[]> {
  if (!picks.length) return [];
  const { rows } = await trx.raw(
    `UPDATE messages m
        SET converted_at = x.occurred_at, conversion_purchase_id = x.purchase_id, revenue = x.net
       FROM unnest(?::bigint[], ?::bigint[], ?::timestamptz[], ?::numeric[]) AS x(message_id, purchase_id, occurred_at, net)
      WHERE m.id = x.message_id AND m.converted_at IS NULL
      RETURNING m.id AS message_id`,
    bindings([picks.map((p) => p.message_id), picks.map((p) => p.purchase_id), picks.map((p) => p.occurred_at), picks.map((p) => p.net)]),
  );
  const done = new Set((rows as Array<{ message_id: string }>).map((r) => String(r.message_id)));
  return picks.filter((p) => done.has(String(p.message_id)));
}

/**
 * Held-out customers never got the message, so their "would have converted" mark is measured
 * from when the campaign was sent (started_at; for other held-out rows, when the row was
 * written). It is independent of the treatment attribution: the same purchase may mark the
 * held-out row of each campaign that held the customer out, as each campaign's holdout must
 * see every purchase its customers made. No message event: nothing was sent.
 */
export async function markHeldOut(trx: Knex.Transaction, purchaseIds: string[]): Promise<number> {
  const { rowCount } = await trx.raw(
    `WITH ${PURCHASES},
     x AS (
       SELECT DISTINCT ON (m.id) m.id AS message_id, m.workspace_id, p.id AS purchase_id, p.occurred_at, p.net
         FROM p
         JOIN messages m ON m.customer_id = p.customer_id AND m.workspace_id = p.workspace_id
                        AND m.status = 'held_out' AND m.converted_at IS NULL
         LEFT JOIN campaigns c ON c.id = m.campaign_id AND c.workspace_id = m.workspace_id
         CROSS JOIN LATERAL (SELECT coalesce(c.started_at, m.created_at) AS anchor) a
        WHERE p.occurred_at >= a.anchor AND p.occurred_at <= a.anchor + p.win
        ORDER BY m.id, p.id)
     UPDATE messages m SET converted_at = x.occurred_at, conversion_purchase_id = x.purchase_id, revenue = x.net
       FROM x WHERE m.id = x.message_id AND m.workspace_id = x.workspace_id AND m.converted_at IS NULL`,
    bindings([purchaseIds]),
  );
  return rowCount ?? 0;
}
