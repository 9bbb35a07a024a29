import type { Knex } from 'knex';

/**
 * The built-in inbox (SMTP_URL=inbox:, TWILIO_API_URL=inbox:): what hark would have handed to a
 * provider, kept per workspace so the console can show it. A row of a real message goes with its
 * message (erasure deletes messages' personal data through them); a test send has no message.
 *
 * messages.error_since: when a message's current run of failures began, so that a campaign can
 * say since when it cannot deliver. Kept by a trigger rather than by each statement that writes an
 * error (requeue, markFailed, markUnknown, status callbacks): it fires only on the row whose error
 * goes from NULL to a value, so the hot paths (markSent sets error = NULL) pay a WHEN test only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('inbox_messages', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.bigInteger('message_id').nullable().references('messages.id').onDelete('CASCADE');
    t.boolean('test').notNullable().defaultTo(false);
    t.text('channel').notNullable();
    t.text('to_address').notNullable();
    t.text('from_address').notNullable();
    t.text('subject');
    t.text('html');
    t.text('text').notNullable();
    t.jsonb('headers').notNullable().defaultTo('{}');
    t.text('encoding');
    t.integer('segments');
    t.timestamp('received_at', { useTz: true }).notNullable();
  });
  await knex.raw("ALTER TABLE inbox_messages ADD CONSTRAINT inbox_messages_channel CHECK (channel IN ('email', 'sms'))");
  await knex.raw('CREATE INDEX inbox_messages_workspace ON inbox_messages (workspace_id, id DESC)');
  await knex.raw('CREATE INDEX inbox_messages_workspace_channel ON inbox_messages (workspace_id, channel, id DESC)');
  await knex.raw('CREATE INDEX inbox_messages_message ON inbox_messages (message_id) WHERE message_id IS NOT NULL');

  await knex.raw('ALTER TABLE messages ADD COLUMN error_since timestamptz');
  await knex.raw(`CREATE FUNCTION hark_messages_error_since() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN NEW.error_since := now(); RETURN NEW; END $$`);
  await knex.raw(`CREATE TRIGGER messages_error_since BEFORE UPDATE OF error ON messages
    FOR EACH ROW WHEN (NEW.error IS NOT NULL AND OLD.error IS NULL) EXECUTE FUNCTION hark_messages_error_since()`);
  // Erasure clears a message's address (customers/repo.ts); its inbox copy holds the address and body, so it goes too.
  await knex.raw(`CREATE FUNCTION hark_inbox_erase() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN DELETE FROM inbox_messages WHERE message_id = NEW.id; RETURN NULL; END $$`);
  await knex.raw(`CREATE TRIGGER messages_inbox_erase AFTER UPDATE OF address ON messages
    FOR EACH ROW WHEN (NEW.address IS NULL) EXECUTE FUNCTION hark_inbox_erase()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS messages_inbox_erase ON messages');
  await knex.raw('DROP FUNCTION IF EXISTS hark_inbox_erase()');
  await knex.raw('DROP TRIGGER IF EXISTS messages_error_since ON messages');
  await knex.raw('DROP FUNCTION IF EXISTS hark_messages_error_since()');
  await knex.raw('ALTER TABLE messages DROP COLUMN IF EXISTS error_since');
  await knex.schema.dropTableIfExists('inbox_messages');
}
