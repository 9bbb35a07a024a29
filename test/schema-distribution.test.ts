import { createDb } from '../src/db';
import { TEST_DATABASE_URL } from './helpers/env';

/**
 * Postgres past one machine (README, Scaling): Citus distributes tables by `workspace_id`, and a
 * distributed table's primary key and unique indexes must contain the distribution column. This
 * test is the ratchet: every primary key and unique index of the migrated schema includes
 * `workspace_id`, or its table is a reference table (small, global, copied to every node), or it is
 * one of today's keys listed below, which the move to Citus has to rework first. A new table or
 * unique index without `workspace_id` fails here.
 */
const REFERENCE_TABLES = ['workspaces', 'feed_cursors', 'dispatch_workers', 'hark_secrets', 'knex_migrations', 'knex_migrations_lock'];

/** Keys of the schema as it is (2026-12-07, with the imports, connectors, inbox and consent history tables), each to become (workspace_id, ...) before distribution. */
const TO_REWORK = [
  'api_keys.api_keys_key_hash_unique', // looked up by key hash before the workspace is known: a reference-table lookup or a hash-to-workspace map
  'api_keys.api_keys_pkey',
  'automation_enrollments.automation_enrollments_active',
  'automation_enrollments.automation_enrollments_pkey',
  'automations.automations_pkey',
  'campaigns.campaigns_pkey',
  'connector_deliveries.connector_deliveries_name',
  'connector_deliveries.connector_deliveries_pkey',
  'connectors.connectors_pkey',
  'consent_changes.consent_changes_pkey',
  'customer_stats.customer_stats_pkey',
  'customers.customers_pkey',
  'events.events_pkey',
  'import_chunks.import_chunks_pkey',
  'import_rows.import_rows_pkey',
  'imports.imports_pkey',
  'inbox_messages.inbox_messages_pkey',
  'messages.messages_campaign_address',
  'messages.messages_campaign_customer',
  'messages.messages_conversion_purchase',
  'messages.messages_enrollment_step',
  'prediction_fits.prediction_fits_pkey',
  'purchase_items.purchase_items_pkey',
  'purchases.purchases_pkey',
  'refunds.refunds_pkey',
  'refunds.refunds_purchase_refund_id',
  'segment_memberships.segment_memberships_open',
  'segment_memberships.segment_memberships_pkey',
  'segment_static_members.segment_static_members_pkey',
  'segments.segments_pkey',
  'suppressions.suppressions_pkey',
  'templates.templates_pkey',
  'twilio_inbound.twilio_inbound_pkey', // a MessageSid is unique at Twilio, not per workspace: (workspace_id, sid) once the number maps to its workspace first
  'webhook_deliveries.webhook_deliveries_endpoint_id_message_event_id_unique',
  'webhook_deliveries.webhook_deliveries_pkey',
  'webhook_endpoints.webhook_endpoints_pkey',
];

const db = createDb(TEST_DATABASE_URL, 1);
afterAll(() => db.destroy());

describe('schema: distributable by workspace_id', () => {
  test('when the schema is migrated, then every primary key and unique index includes workspace_id, or names a reference table, or is a listed key to rework', async () => {
    const { rows } = await db.raw(`
      SELECT c.relname AS "table", i.relname AS "index"
        FROM pg_index ix
        JOIN pg_class i ON i.oid = ix.indexrelid
        JOIN pg_class c ON c.oid = ix.indrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = current_schema() AND ix.indisunique
         -- A partition's keys are its partitioned table's, checked there (messages, message_events).
         AND NOT c.relispartition
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'workspace_id' AND a.attnum = ANY (ix.indkey))
       ORDER BY 1, 2`);
    const offending = (rows as Array<{ table: string; index: string }>).filter((r) => !REFERENCE_TABLES.includes(r.table)).map((r) => `${r.table}.${r.index}`);
    expect(offending.filter((k) => !TO_REWORK.includes(k))).toEqual([]);
    // A listed key that was reworked (or dropped) leaves the list, so that it cannot come back unseen.
    expect(TO_REWORK.filter((k) => !offending.includes(k))).toEqual([]);
  });

  test('when a table has a workspace_id, then it is a NOT NULL column (a row belongs to one tenant)', async () => {
    const { rows } = await db.raw(`
      SELECT table_name FROM information_schema.columns
       WHERE table_schema = current_schema() AND column_name = 'workspace_id' AND is_nullable = 'YES' ORDER BY 1`);
    expect((rows as Array<{ table_name: string }>).map((r) => r.table_name)).toEqual([]);
  });
});
