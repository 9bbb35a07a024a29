import type { Knex } from 'knex';

/**
 * Dispatch bookkeeping on the outbox (0002 has the message rows themselves):
 * - dispatch_requested_at: when a dispatch job was last enqueued for a queued row, so the
 *   sweeper can tell a row waiting in Redis from one whose job was lost with Redis;
 * - claimed_by + dispatch_workers: which worker process holds a row in 'sending', and whether
 *   that process is still alive (heartbeats in Postgres survive a Redis restart), so a crashed
 *   worker's rows become 'unknown' quickly instead of after a long lease;
 * - quiet_deferred: the row was deferred by quiet hours (counts.suppressed.quietHours).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('messages', (t) => {
    t.timestamp('dispatch_requested_at', { useTz: true });
    t.uuid('claimed_by');
    t.boolean('quiet_deferred').notNullable().defaultTo(false);
  });
  // The duplicate rule looks up an address among all of a campaign's rows, skipped ones included
  // (the unique index of 0002 covers only the rows that will be sent).
  await knex.raw('CREATE INDEX messages_campaign_address_all ON messages (campaign_id, address) WHERE campaign_id IS NOT NULL AND address IS NOT NULL');
  await knex.raw("CREATE INDEX messages_sending ON messages (claimed_at) WHERE status = 'sending'");
  await knex.raw("CREATE INDEX messages_queued_requested ON messages (dispatch_requested_at NULLS FIRST, id) WHERE status = 'queued'");
  await knex.schema.createTable('dispatch_workers', (t) => {
    t.uuid('id').primary();
    t.timestamp('started_at', { useTz: true }).notNullable();
    t.timestamp('heartbeat_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('dispatch_workers');
  await knex.raw('DROP INDEX IF EXISTS messages_campaign_address_all');
  await knex.raw('DROP INDEX IF EXISTS messages_sending');
  await knex.raw('DROP INDEX IF EXISTS messages_queued_requested');
  await knex.schema.alterTable('messages', (t) => {
    t.dropColumns('dispatch_requested_at', 'claimed_by', 'quiet_deferred');
  });
}
