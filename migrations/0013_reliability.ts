import type { Knex } from 'knex';

/**
 * Feed ordering that commits cannot overtake (src/feed.ts). Each feed row records the id of the
 * transaction that wrote it (pg_current_xact_id(), the top-level one); a consumer reads, in
 * (xid, id) order, only rows whose transaction is below the oldest one still running
 * (pg_snapshot_xmin of the current snapshot): those have all committed or aborted, and no later
 * transaction can get a smaller id. Ids alone are taken at insert and become visible at commit,
 * so a slow transaction's row could land below a cursor that had already moved past it.
 * Rows written before this migration get xid 0 (a fast default, no table rewrite) and are
 * consumed first, after the ids their consumers had already passed (feed_cursors.last_xid 0).
 * The (created_at, id) indexes served the old time-lagged reads only: they go, so that a feed row
 * (two per email sent, in message_events) still enters as many indexes as before.
 */
const FEEDS = ['purchases', 'events', 'message_events'] as const;

export async function up(knex: Knex): Promise<void> {
  for (const table of FEEDS) {
    await knex.raw(`ALTER TABLE ${table} ADD COLUMN xid xid8 NOT NULL DEFAULT '0'`);
    await knex.raw(`ALTER TABLE ${table} ALTER COLUMN xid SET DEFAULT pg_current_xact_id()`);
    await knex.raw(`CREATE INDEX ${table}_feed ON ${table} (xid, id)`);
    await knex.raw(`DROP INDEX IF EXISTS ${table}_created`);
  }
  await knex.raw(`ALTER TABLE feed_cursors ADD COLUMN last_xid xid8 NOT NULL DEFAULT '0'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE feed_cursors DROP COLUMN last_xid');
  for (const table of FEEDS) {
    await knex.raw(`CREATE INDEX IF NOT EXISTS ${table}_created ON ${table} (created_at, id)`);
    await knex.raw(`DROP INDEX IF EXISTS ${table}_feed`);
    await knex.raw(`ALTER TABLE ${table} DROP COLUMN xid`);
  }
}
