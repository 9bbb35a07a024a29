import type { Db } from '../db';

const DAY = 86400000;

/**
 * Rolling 90-day figures are added to on each purchase but must also fall as purchases age out
 * of the window. This re-bases them, set-based, for the customers whose figures can have moved:
 * those with anything counted in the window, and those whose last purchase is in it (a purchase
 * dated in the future when it was posted enters the window later). It reads 90 days of
 * purchases, never whole histories.
 */
export async function rollRecentStats(db: Db, now: Date, workspaceId?: string): Promise<number> {
  const since = new Date(now.getTime() - 90 * DAY);
  const res = await db.raw(
    `UPDATE customer_stats s SET purchases_90d = w.n, spent_90d = w.spent, updated_at = ?
     FROM (
       SELECT s2.customer_id, count(p.id)::int AS n, coalesce(sum(p.total - p.refunded), 0) AS spent
       FROM customer_stats s2
       LEFT JOIN purchases p ON p.customer_id = s2.customer_id AND p.workspace_id = s2.workspace_id AND p.occurred_at > ? AND p.occurred_at <= ?
       WHERE (s2.purchases_90d > 0 OR s2.last_purchase_at > ?) ${workspaceId ? 'AND s2.workspace_id = ?' : ''}
       GROUP BY s2.customer_id
     ) w
     WHERE s.customer_id = w.customer_id AND (s.purchases_90d <> w.n OR s.spent_90d <> w.spent)`,
    [now, since, now, since, ...(workspaceId ? [workspaceId] : [])],
  );
  return res.rowCount ?? 0;
}
