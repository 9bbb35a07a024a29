import type { Knex } from 'knex';

/**
 * CSV imports, customer search and consent history.
 *
 * - imports: one row per uploaded file, with its progress counters and its resume point.
 * - import_chunks: the uploaded file itself, in ~1 MB pieces, so that any worker host can read
 *   it (the API's disk is not shared); deleted when the import ends.
 * - import_rows: the parsed, validated rows of an import (staging). Purchases are applied from
 *   here in orderId order, so one purchase gathers its item rows wherever they stood in the file
 *   without the file being held in memory; customers in file order. Deleted when the import ends
 *   (its first 100 errors are kept on the imports row).
 * - Search: prefix indexes (text_pattern_ops) on externalId, email and phone, and trigram indexes
 *   on first and last name for case-insensitive substrings, when pg_trgm is installable.
 * - consent_changes: every change of a customer's email or SMS consent, whoever wrote it (the
 *   API, an unsubscribe link, an inbound STOP): a trigger on customers records it, so no writer
 *   can forget to.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('imports', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('kind').notNullable().checkIn(['customers', 'purchases']);
    t.text('status').notNullable().checkIn(['uploading', 'queued', 'running', 'done', 'failed']);
    // 'parse' (file -> import_rows, restarted from the top after a crash) then 'apply' (resumed past apply_cursor).
    t.text('phase').notNullable().defaultTo('parse');
    t.jsonb('options').notNullable().defaultTo('{}'); // mapping, dateFormat, timezone, encoding
    t.bigInteger('bytes').notNullable().defaultTo(0);
    t.integer('chunks').notNullable().defaultTo(0);
    t.integer('rows_read').notNullable().defaultTo(0);
    t.integer('rows_staged').notNullable().defaultTo(0);
    t.integer('rows_applied').notNullable().defaultTo(0);
    t.integer('accepted').notNullable().defaultTo(0);
    t.integer('duplicates').notNullable().defaultTo(0);
    t.integer('rejected').notNullable().defaultTo(0);
    t.double('progress').notNullable().defaultTo(0);
    t.text('apply_cursor'); // last orderId (purchases) or line (customers) up to which all is applied
    t.jsonb('done_ranges').notNullable().defaultTo('[]'); // [firstOrderId, lastOrderId] of batches applied past apply_cursor
    t.jsonb('errors').notNullable().defaultTo('[]');
    t.text('failure');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    t.index(['workspace_id', 'created_at']);
  });
  await knex.schema.createTable('import_chunks', (t) => {
    t.uuid('import_id').notNullable().references('imports.id').onDelete('CASCADE');
    t.integer('seq').notNullable();
    t.binary('data').notNullable();
    t.primary(['import_id', 'seq']);
  });
  // UNLOGGED: staging rows are rebuilt from the file whenever they are lost, so they need no WAL
  // (writing them took twice as long with it). A Postgres crash empties the table; an import in
  // its apply phase then parses its file again (src/imports/service.ts). No foreign key: a
  // logged table cannot be referenced from an unlogged one's cascade the other way, and rows go
  // with their import in repo.ts.
  await knex.raw(`CREATE UNLOGGED TABLE import_rows (
    import_id uuid NOT NULL,
    line integer NOT NULL,
    key text,   -- orderId (purchases) or externalId (customers); null when the row had none
    data text,  -- the row as the API would take it, as JSON; null for a rejected row
    error text,
    PRIMARY KEY (import_id, line))`);
  // The apply pass walks a purchase import's rows by (orderId, line).
  await knex.raw('CREATE INDEX import_rows_key ON import_rows (import_id, key, line)');

  await knex.raw('CREATE INDEX customers_search_external_id ON customers (workspace_id, external_id text_pattern_ops)');
  await knex.raw('CREATE INDEX customers_search_email ON customers (workspace_id, email text_pattern_ops) WHERE email IS NOT NULL');
  await knex.raw('CREATE INDEX customers_search_phone ON customers (workspace_id, phone text_pattern_ops) WHERE phone IS NOT NULL');
  const { rows } = await knex.raw("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'");
  if (rows.length) {
    await knex.raw('CREATE EXTENSION IF NOT EXISTS pg_trgm');
    await knex.raw('CREATE INDEX customers_search_first_name ON customers USING gin (first_name gin_trgm_ops)');
    await knex.raw('CREATE INDEX customers_search_last_name ON customers USING gin (last_name gin_trgm_ops)');
  }

  await knex.schema.createTable('consent_changes', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable();
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.text('channel').notNullable().checkIn(['email', 'sms']);
    t.text('value');
    t.text('previous');
    t.timestamp('at', { useTz: true }).notNullable();
    t.index(['customer_id', 'at']);
  });
  await knex.raw(`CREATE OR REPLACE FUNCTION hark_consent_changes() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        IF NEW.email_consent IS NOT NULL THEN
          INSERT INTO consent_changes (workspace_id, customer_id, channel, value, previous, at)
          VALUES (NEW.workspace_id, NEW.id, 'email', NEW.email_consent, NULL, coalesce(NEW.email_consent_at, now()));
        END IF;
        IF NEW.sms_consent IS NOT NULL THEN
          INSERT INTO consent_changes (workspace_id, customer_id, channel, value, previous, at)
          VALUES (NEW.workspace_id, NEW.id, 'sms', NEW.sms_consent, NULL, coalesce(NEW.sms_consent_at, now()));
        END IF;
      ELSE
        IF NEW.email_consent IS DISTINCT FROM OLD.email_consent THEN
          INSERT INTO consent_changes (workspace_id, customer_id, channel, value, previous, at)
          VALUES (NEW.workspace_id, NEW.id, 'email', NEW.email_consent, OLD.email_consent, coalesce(NEW.email_consent_at, now()));
        END IF;
        IF NEW.sms_consent IS DISTINCT FROM OLD.sms_consent THEN
          INSERT INTO consent_changes (workspace_id, customer_id, channel, value, previous, at)
          VALUES (NEW.workspace_id, NEW.id, 'sms', NEW.sms_consent, OLD.sms_consent, coalesce(NEW.sms_consent_at, now()));
        END IF;
      END IF;
      RETURN NULL;
    END $$`);
  // Only rows that carry a consent fire it: the ingest path's inserts (no consent) pay nothing.
  await knex.raw(`CREATE TRIGGER customers_consent_insert AFTER INSERT ON customers FOR EACH ROW
    WHEN (NEW.email_consent IS NOT NULL OR NEW.sms_consent IS NOT NULL) EXECUTE FUNCTION hark_consent_changes()`);
  await knex.raw(`CREATE TRIGGER customers_consent_update AFTER UPDATE OF email_consent, sms_consent ON customers FOR EACH ROW
    WHEN (NEW.email_consent IS DISTINCT FROM OLD.email_consent OR NEW.sms_consent IS DISTINCT FROM OLD.sms_consent) EXECUTE FUNCTION hark_consent_changes()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER IF EXISTS customers_consent_update ON customers');
  await knex.raw('DROP TRIGGER IF EXISTS customers_consent_insert ON customers');
  await knex.raw('DROP FUNCTION IF EXISTS hark_consent_changes()');
  await knex.schema.dropTableIfExists('consent_changes');
  for (const ix of ['first_name', 'last_name', 'external_id', 'email', 'phone']) await knex.raw(`DROP INDEX IF EXISTS customers_search_${ix}`);
  await knex.schema.dropTableIfExists('import_rows');
  await knex.schema.dropTableIfExists('import_chunks');
  await knex.schema.dropTableIfExists('imports');
}
