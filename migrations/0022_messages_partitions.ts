import type { Knex } from 'knex';

/**
 * messages becomes a table partitioned by RANGE on `period`, the first day of a month that is a
 * function of the message's owning send, never of the row's own time (README, Scaling: message
 * history):
 *   - a campaign's messages: the month its send started (campaigns.started_at, set once on
 *     draft/scheduled -> sending, before fan-out writes its first row; created_at if never set);
 *   - an automation step's message: the month its enrollment entered (automation_enrollments.entered_at,
 *     written with the enrollment and never changed), so all steps of one enrollment share it;
 *   - any other row: its own month (the column's default).
 * Since period is determined by campaign_id (resp. enrollment_id), the unique keys
 * (campaign_id, customer_id, period), (campaign_id, channel, address, period) and
 * (enrollment_id, step_index, period) are exactly as strong as they were without period: the
 * dedupe holds across months, which a partition by created_at would break at a month boundary.
 *
 * - Primary key (id, workspace_id, period): the partition key must be in it, workspace_id keeps it
 *   distributable (test/schema-distribution), id stays first for lookups by id.
 * - message_events and inbox_messages referenced messages(id). A foreign key to a partitioned
 *   table must name its whole key, and detaching a referenced partition re-checks the referencing
 *   table while holding messages' ACCESS EXCLUSIVE lock (a scan of message_events). So the two
 *   foreign keys become a statement-level AFTER DELETE trigger with the deleted rows as a
 *   transition table, which deletes their events and inbox copies: the same ON DELETE CASCADE
 *   for a campaign's deletion, a workspace's, or any DELETE on messages. Retention
 *   (src/messages/partitions.ts) deletes a month's events itself before it detaches the month.
 * - fillfactor 50 (0018) is a per-partition setting: every partition is created with it.
 * - Existing rows are copied, each into its period's partition; on a large installation run this
 *   in a quiet hour.
 */
const PERIOD_OF_ROW = `CASE
    WHEN o.campaign_id IS NOT NULL THEN date_trunc('month', coalesce(c.started_at, c.created_at, o.created_at) AT TIME ZONE 'UTC')::date
    WHEN o.enrollment_id IS NOT NULL THEN date_trunc('month', coalesce(e.entered_at, o.created_at) AT TIME ZONE 'UTC')::date
    ELSE date_trunc('month', o.created_at AT TIME ZONE 'UTC')::date END`;

const INDEXES = [
  `CREATE INDEX messages_automation ON messages (automation_id, step_index) WHERE automation_id IS NOT NULL`,
  `CREATE INDEX messages_campaign_status ON messages (campaign_id, status, id)`,
  `CREATE INDEX messages_customer_id_sent_at_index ON messages (customer_id, sent_at)`,
  `CREATE INDEX messages_provider_id ON messages (provider_id) WHERE provider_id IS NOT NULL`,
  `CREATE INDEX messages_queued_requested ON messages (dispatch_requested_at NULLS FIRST, id) WHERE status = 'queued'`,
  `CREATE INDEX messages_sending ON messages (claimed_at) WHERE status = 'sending'`,
  `CREATE INDEX messages_workspace_id_id_index ON messages (workspace_id, id)`,
];

const UNIQUES = (p: string) => [
  `CREATE UNIQUE INDEX messages_campaign_address ON messages (campaign_id, channel, address${p}) WHERE campaign_id IS NOT NULL AND address IS NOT NULL AND status NOT IN ('skipped', 'held_out')`,
  `CREATE UNIQUE INDEX messages_campaign_customer ON messages (campaign_id, customer_id${p}) WHERE campaign_id IS NOT NULL AND customer_id IS NOT NULL`,
  `CREATE UNIQUE INDEX messages_conversion_purchase ON messages (conversion_purchase_id${p}) WHERE conversion_purchase_id IS NOT NULL AND status <> 'held_out'`,
  `CREATE UNIQUE INDEX messages_enrollment_step ON messages (enrollment_id, step_index${p}) WHERE enrollment_id IS NOT NULL`,
];

const FOREIGN_KEYS = [
  'ADD CONSTRAINT messages_automation_fk FOREIGN KEY (automation_id) REFERENCES automations(id) ON DELETE SET NULL',
  'ADD CONSTRAINT messages_campaign_id_foreign FOREIGN KEY (campaign_id) REFERENCES campaigns(id) ON DELETE CASCADE',
  'ADD CONSTRAINT messages_customer_id_foreign FOREIGN KEY (customer_id) REFERENCES customers(id) ON DELETE SET NULL',
  'ADD CONSTRAINT messages_workspace_id_foreign FOREIGN KEY (workspace_id) REFERENCES workspaces(id) ON DELETE CASCADE',
];

async function triggers(knex: Knex): Promise<void> {
  // Functions from 0014; row triggers on a partitioned table are cloned to every partition.
  await knex.raw(`CREATE TRIGGER messages_error_since BEFORE UPDATE OF error ON messages
    FOR EACH ROW WHEN (NEW.error IS NOT NULL AND OLD.error IS NULL) EXECUTE FUNCTION hark_messages_error_since()`);
  await knex.raw(`CREATE TRIGGER messages_inbox_erase AFTER UPDATE OF address ON messages
    FOR EACH ROW WHEN (NEW.address IS NULL) EXECUTE FUNCTION hark_inbox_erase()`);
}

const monthName = (month: string) => `messages_y${month.slice(0, 4)}m${month.slice(5, 7)}`;
const nextMonth = (month: string) => {
  const [y, m] = month.split('-').map(Number) as [number, number];
  return m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`;
};

export async function up(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE message_events DROP CONSTRAINT message_events_message_id_fkey');
  await knex.raw('ALTER TABLE inbox_messages DROP CONSTRAINT inbox_messages_message_id_foreign');
  await knex.raw(`CREATE TABLE messages_p (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS, period date NOT NULL
    DEFAULT date_trunc('month', CURRENT_TIMESTAMP AT TIME ZONE 'UTC')::date) PARTITION BY RANGE (period)`);
  await knex.raw('CREATE TABLE messages_default PARTITION OF messages_p DEFAULT WITH (fillfactor = 50)');
  // One partition per period that has rows, and this month and the next three.
  const { rows } = await knex.raw(`
    SELECT DISTINCT to_char(p, 'YYYY-MM-DD') AS month FROM (
      SELECT ${PERIOD_OF_ROW} AS p FROM messages o
        LEFT JOIN campaigns c ON c.id = o.campaign_id LEFT JOIN automation_enrollments e ON e.id = o.enrollment_id
      UNION ALL SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => g))::date FROM generate_series(0, 3) g) x`);
  for (const { month } of rows as Array<{ month: string }>) {
    // Names and bounds come from dates formatted above, never from input.
    await knex.raw(`CREATE TABLE ${monthName(month)} PARTITION OF messages_p FOR VALUES FROM ('${month}') TO ('${nextMonth(month)}') WITH (fillfactor = 50)`);
  }
  await knex.raw(`INSERT INTO messages_p SELECT o.*, ${PERIOD_OF_ROW} FROM messages o
    LEFT JOIN campaigns c ON c.id = o.campaign_id LEFT JOIN automation_enrollments e ON e.id = o.enrollment_id`);
  await knex.raw('ALTER SEQUENCE messages_id_seq OWNED BY messages_p.id');
  await knex.raw('DROP TABLE messages');
  await knex.raw('ALTER TABLE messages_p RENAME TO messages');
  await knex.raw('ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id, workspace_id, period)');
  for (const sql of [...INDEXES, ...UNIQUES(', period')]) await knex.raw(sql);
  for (const fk of FOREIGN_KEYS) await knex.raw(`ALTER TABLE messages ${fk}`);
  await triggers(knex);
  // The cascade the two foreign keys did (see above), once per statement, set-based.
  await knex.raw(`CREATE FUNCTION hark_messages_gone() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      DELETE FROM message_events e USING gone g WHERE e.message_id = g.id AND e.workspace_id = g.workspace_id;
      DELETE FROM inbox_messages i USING gone g WHERE i.message_id = g.id AND i.workspace_id = g.workspace_id;
      RETURN NULL;
    END $$`);
  await knex.raw(`CREATE TRIGGER messages_gone AFTER DELETE ON messages REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION hark_messages_gone()`);
  await knex.raw('ANALYZE messages');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER messages_gone ON messages');
  await knex.raw('DROP FUNCTION hark_messages_gone()');
  // Events and inbox copies of messages that are gone (no key kept them out since up) go, so that the keys can return.
  await knex.raw('DELETE FROM message_events e WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = e.message_id)');
  await knex.raw('DELETE FROM inbox_messages i WHERE i.message_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = i.message_id)');
  await knex.raw('CREATE TABLE messages_u (LIKE messages INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = 50)');
  await knex.raw('ALTER TABLE messages_u DROP COLUMN period');
  const { rows } = await knex.raw(`SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols FROM pg_attribute
    WHERE attrelid = 'messages_u'::regclass AND attnum > 0 AND NOT attisdropped`);
  const cols = (rows as Array<{ cols: string }>)[0]!.cols;
  await knex.raw(`INSERT INTO messages_u (${cols}) SELECT ${cols} FROM messages`);
  await knex.raw('ALTER SEQUENCE messages_id_seq OWNED BY messages_u.id');
  await knex.raw('DROP TABLE messages');
  await knex.raw('ALTER TABLE messages_u RENAME TO messages');
  await knex.raw('ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id)');
  for (const sql of [...INDEXES, ...UNIQUES('')]) await knex.raw(sql);
  for (const fk of FOREIGN_KEYS) await knex.raw(`ALTER TABLE messages ${fk}`);
  await triggers(knex);
  await knex.raw('ALTER TABLE message_events ADD CONSTRAINT message_events_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE');
  await knex.raw('ALTER TABLE inbox_messages ADD CONSTRAINT inbox_messages_message_id_foreign FOREIGN KEY (message_id) REFERENCES messages(id) ON DELETE CASCADE');
}
