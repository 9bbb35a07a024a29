import type { Knex } from 'knex';

/**
 * Segment counts at 1M customers read customer_stats alone (src/segments/count.ts); these two of
 * its indexes now carry the columns the presets compare, so a count is an index-only scan:
 * - customer_stats_ws_spent (workspace_id, total_spent) INCLUDE (purchase_count): vip (topPercent
 *   ranks buyers, purchase_count > 0) and spend thresholds;
 * - customer_stats_ws_last (workspace_id, last_purchase_at) INCLUDE (purchase_count, avg_gap_days):
 *   fading (overdue against the customer's own rhythm, avg_gap_days being a stored column).
 * They replace the indexes of the same keys, so a stats update writes as many index entries as
 * before (a purchase changes total_spent, so its update was never HOT).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_spent');
  await knex.raw('CREATE INDEX customer_stats_ws_spent ON customer_stats (workspace_id, total_spent) INCLUDE (purchase_count)');
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_last');
  await knex.raw('CREATE INDEX customer_stats_ws_last ON customer_stats (workspace_id, last_purchase_at) INCLUDE (purchase_count, avg_gap_days)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_last');
  await knex.raw('CREATE INDEX customer_stats_ws_last ON customer_stats (workspace_id, last_purchase_at)');
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_spent');
  await knex.raw('CREATE INDEX customer_stats_ws_spent ON customer_stats (workspace_id, total_spent)');
}
