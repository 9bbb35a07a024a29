import type { Knex } from 'knex';

/**
 * Tenancy, customers with their incrementally kept stats, POS purchases, touchpoint events and
 * the suppression list. Every table carries workspace_id first in its indexes: every query is
 * scoped to one workspace, and segment queries range over one workspace's rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('CREATE EXTENSION IF NOT EXISTS pgcrypto');
  // Per-category spend is a jsonb map {category: amount}; these keep it and its arg-max current.
  await knex.raw(`CREATE OR REPLACE FUNCTION hark_jsonb_add(a jsonb, b jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE AS $$
      SELECT coalesce(jsonb_object_agg(k, coalesce((a->>k)::numeric, 0) + coalesce((b->>k)::numeric, 0)), '{}'::jsonb)
      FROM (SELECT jsonb_object_keys(coalesce(a, '{}')) UNION SELECT jsonb_object_keys(coalesce(b, '{}'))) AS keys(k)
    $$`);
  await knex.raw(`CREATE OR REPLACE FUNCTION hark_top_key(m jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
      SELECT key FROM jsonb_each_text(coalesce(m, '{}')) ORDER BY value::numeric DESC, key LIMIT 1
    $$`);

  await knex.schema.createTable('workspaces', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.text('timezone').notNullable().defaultTo('UTC');
    t.specificType('currency', 'char(3)').notNullable().defaultTo('USD');
    t.jsonb('settings').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('scope').notNullable().checkIn(['admin', 'ingest']);
    // SHA-256 of the key: keys are 32 random bytes, so a fast hash is the right store.
    t.specificType('key_hash', 'bytea').notNullable().unique();
    t.text('key_prefix').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.index(['workspace_id']);
  });

  await knex.schema.createTable('customers', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('external_id');
    t.text('email');
    t.text('phone');
    t.text('first_name');
    t.text('last_name');
    t.date('birth_date');
    t.text('gender');
    t.text('city');
    t.text('region');
    t.specificType('country', 'char(2)');
    t.text('postal_code');
    t.text('timezone');
    t.text('email_consent');
    t.timestamp('email_consent_at', { useTz: true });
    t.text('sms_consent');
    t.timestamp('sms_consent_at', { useTz: true });
    t.jsonb('attributes').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['workspace_id', 'external_id']);
    t.index(['workspace_id', 'id']);
  });
  await knex.raw('CREATE INDEX customers_ws_email ON customers (workspace_id, email) WHERE email IS NOT NULL');
  await knex.raw('CREATE INDEX customers_ws_phone ON customers (workspace_id, phone) WHERE phone IS NOT NULL');
  await knex.raw('CREATE INDEX customers_ws_city ON customers (workspace_id, city)');
  await knex.raw('CREATE INDEX customers_ws_birth ON customers (workspace_id, birth_date)');

  // One row per customer, created with the customer and updated in the transaction of each
  // purchase or refund. Rolling 90-day figures are also re-based by the hourly stats job.
  await knex.schema.createTable('customer_stats', (t) => {
    t.bigInteger('customer_id').primary().references('customers.id').onDelete('CASCADE');
    t.uuid('workspace_id').notNullable();
    t.integer('purchase_count').notNullable().defaultTo(0);
    t.decimal('total_spent', 14, 2).notNullable().defaultTo(0);
    t.timestamp('first_purchase_at', { useTz: true });
    t.timestamp('last_purchase_at', { useTz: true });
    t.integer('purchases_90d').notNullable().defaultTo(0);
    t.decimal('spent_90d', 14, 2).notNullable().defaultTo(0);
    t.jsonb('category_spend').notNullable().defaultTo('{}');
    t.text('top_category');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  // The customer's own rhythm, stored so that "fading" is a plain comparison on one row.
  await knex.raw(`ALTER TABLE customer_stats ADD COLUMN avg_gap_days double precision GENERATED ALWAYS AS (
      CASE WHEN purchase_count > 1
        THEN extract(epoch FROM (last_purchase_at - first_purchase_at)) / 86400.0 / (purchase_count - 1)
      END) STORED`);
  await knex.raw('CREATE INDEX customer_stats_ws_spent ON customer_stats (workspace_id, total_spent)');
  await knex.raw('CREATE INDEX customer_stats_ws_last ON customer_stats (workspace_id, last_purchase_at)');

  await knex.schema.createTable('purchases', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.text('order_id').notNullable();
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.decimal('total', 14, 2).notNullable();
    t.decimal('refunded', 14, 2).notNullable().defaultTo(0);
    t.specificType('currency', 'char(3)');
    t.text('store_id');
    t.text('channel');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['workspace_id', 'order_id']);
    t.index(['customer_id', 'occurred_at']);
    t.index(['workspace_id', 'occurred_at']);
  });

  // Items carry customer and time so that "bought category X within N days" is answered from
  // one index range without touching purchases.
  await knex.schema.createTable('purchase_items', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('purchase_id').notNullable().references('purchases.id').onDelete('CASCADE');
    t.uuid('workspace_id').notNullable();
    t.bigInteger('customer_id').notNullable();
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.text('sku').notNullable();
    t.text('name');
    t.text('category');
    t.text('brand');
    t.integer('quantity').notNullable();
    t.decimal('unit_price', 14, 2).notNullable();
    t.index(['purchase_id']);
  });
  await knex.raw('CREATE INDEX purchase_items_category ON purchase_items (workspace_id, category, occurred_at, customer_id)');
  await knex.raw('CREATE INDEX purchase_items_brand ON purchase_items (workspace_id, brand, occurred_at, customer_id)');
  await knex.raw('CREATE INDEX purchase_items_sku ON purchase_items (workspace_id, sku, occurred_at, customer_id)');
  await knex.raw('CREATE INDEX purchase_items_customer ON purchase_items (customer_id, occurred_at)');

  await knex.schema.createTable('refunds', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('purchase_id').notNullable().references('purchases.id').onDelete('CASCADE');
    t.uuid('workspace_id').notNullable();
    t.text('refund_id');
    t.decimal('amount', 14, 2).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['purchase_id']);
  });
  // A client may name its refund so that a retried request refunds once.
  await knex.raw('CREATE UNIQUE INDEX refunds_purchase_refund_id ON refunds (purchase_id, refund_id) WHERE refund_id IS NOT NULL');

  await knex.schema.createTable('events', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.text('event_id');
    t.text('type').notNullable();
    t.text('channel');
    t.text('device');
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.jsonb('properties').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE UNIQUE INDEX events_ws_event_id ON events (workspace_id, event_id) WHERE event_id IS NOT NULL');
  await knex.raw('CREATE INDEX events_ws_type_time ON events (workspace_id, type, occurred_at, customer_id)');
  await knex.raw('CREATE INDEX events_customer_type_time ON events (customer_id, type, occurred_at)');

  // Addresses that must never be messaged again, kept as SHA-256 of the normalised address so
  // that an erased customer's address stays blocked without being stored.
  await knex.schema.createTable('suppressions', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('channel').notNullable().checkIn(['email', 'sms']);
    t.specificType('address_hash', 'bytea').notNullable();
    t.text('reason').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['workspace_id', 'channel', 'address_hash']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['suppressions', 'events', 'refunds', 'purchase_items', 'purchases', 'customer_stats', 'customers', 'api_keys', 'workspaces']) {
    await knex.schema.dropTableIfExists(table);
  }
  await knex.raw('DROP FUNCTION IF EXISTS hark_jsonb_add(jsonb, jsonb)');
  await knex.raw('DROP FUNCTION IF EXISTS hark_top_key(jsonb)');
}
