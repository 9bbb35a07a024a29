import type { Knex } from 'knex';

/**
 * message_events becomes a table partitioned by month of created_at (README, Scaling: message
 * history), so that old months are detached and dropped whole (src/messages/partitions.ts, run
 * hourly by the maintenance worker) instead of growing without bound or being deleted row by row.
 *
 * - The primary key must contain the partition column: (id, workspace_id, created_at). id stays
 *   first, from the same sequence, so lookups by id (the webhook fan-out) still probe one index per
 *   partition; workspace_id is in it so that the key is distributable (test/schema-distribution).
 * - The foreign keys stay: a partitioned table may reference a plain one (messages, workspaces),
 *   and ON DELETE CASCADE from messages still reaches every partition.
 * - A DEFAULT partition takes rows whose month has no partition yet (a clock far off); the
 *   maintenance moves them into their month's partition when it creates it.
 * - Existing rows are copied, each month into its own partition. That rewrites the table once;
 *   on a large installation run this migration in a quiet hour.
 */
const COLUMNS = 'id, workspace_id, message_id, type, occurred_at, data, created_at, xid';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE message_events RENAME TO message_events_unpartitioned');
  await knex.raw('ALTER INDEX message_events_pkey RENAME TO message_events_unpartitioned_pkey');
  await knex.raw('ALTER INDEX message_events_feed RENAME TO message_events_unpartitioned_feed');
  await knex.raw('ALTER INDEX message_events_message_id_index RENAME TO message_events_unpartitioned_message_id');
  await knex.raw(`
    CREATE TABLE message_events (
      id bigint NOT NULL DEFAULT nextval('message_events_id_seq'),
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
      type text NOT NULL CHECK (type IN ('sent', 'delivered', 'failed', 'opened', 'clicked', 'unsubscribed', 'converted')),
      occurred_at timestamptz NOT NULL,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
      xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
      CONSTRAINT message_events_pkey PRIMARY KEY (id, workspace_id, created_at)
    ) PARTITION BY RANGE (created_at)`);
  await knex.raw('CREATE INDEX message_events_feed ON message_events (xid, id)');
  await knex.raw('CREATE INDEX message_events_message_id ON message_events (message_id)');
  await knex.raw('CREATE TABLE message_events_default PARTITION OF message_events DEFAULT');
  // One partition per month that has rows, and this month and the next three.
  const { rows } = await knex.raw(`
    SELECT DISTINCT to_char(m, 'YYYY-MM') AS month FROM (
      SELECT date_trunc('month', created_at AT TIME ZONE 'UTC') AS m FROM message_events_unpartitioned
      UNION ALL SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g) FROM generate_series(0, 3) g) x`);
  for (const { month } of rows as Array<{ month: string }>) {
    const [y, m] = month.split('-').map(Number);
    const next = m === 12 ? `${y + 1}-01` : `${y}-${String(m + 1).padStart(2, '0')}`;
    // Names and bounds come from dates formatted above, never from input.
    await knex.raw(`CREATE TABLE message_events_y${y}m${String(m).padStart(2, '0')} PARTITION OF message_events FOR VALUES FROM ('${month}-01 00:00:00+00') TO ('${next}-01 00:00:00+00')`);
  }
  await knex.raw(`INSERT INTO message_events (${COLUMNS}) SELECT ${COLUMNS} FROM message_events_unpartitioned`);
  await knex.raw('ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id');
  await knex.raw('DROP TABLE message_events_unpartitioned');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE message_events RENAME TO message_events_partitioned');
  for (const index of ['pkey', 'feed', 'message_id']) await knex.raw(`ALTER INDEX message_events_${index} RENAME TO message_events_partitioned_${index}`);
  await knex.raw(`
    CREATE TABLE message_events (
      id bigint NOT NULL DEFAULT nextval('message_events_id_seq') PRIMARY KEY,
      workspace_id uuid NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
      message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
      type text NOT NULL CHECK (type IN ('sent', 'delivered', 'failed', 'opened', 'clicked', 'unsubscribed', 'converted')),
      occurred_at timestamptz NOT NULL,
      data jsonb NOT NULL DEFAULT '{}',
      created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
      xid xid8 NOT NULL DEFAULT pg_current_xact_id())`);
  await knex.raw(`INSERT INTO message_events (${COLUMNS}) SELECT ${COLUMNS} FROM message_events_partitioned`);
  await knex.raw('ALTER SEQUENCE message_events_id_seq OWNED BY message_events.id');
  await knex.raw('DROP TABLE message_events_partitioned');
  await knex.raw('CREATE INDEX message_events_feed ON message_events (xid, id)');
  await knex.raw('CREATE INDEX message_events_message_id_index ON message_events (message_id)');
}
