import type { Knex } from 'knex';

/**
 * Connectors: commerce platforms (Shopify, WooCommerce) post their webhooks to hark.
 * - connectors: the secret is kept encrypted (AES-256-GCM under a key derived from the signing
 *   secret, see src/connectors/secret.ts): hark must read it back to verify each HMAC, so it cannot
 *   be hashed, and a database dump alone must not let anyone forge orders.
 * - connector_deliveries: each verified delivery; `name` is the platform's delivery id (or the
 *   body's SHA-256), unique per connector among the first arrivals (duplicate_of IS NULL), so a
 *   redelivery is stored once and listed as a duplicate. The raw body is kept only until mapped.
 * - connector_pending_refunds: a refund that arrived before its order, applied when the order does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('connectors', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('type').notNullable();
    t.text('name').notNullable();
    t.binary('secret_enc').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['workspace_id', 'created_at']);
  });
  await knex.schema.createTable('connector_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable();
    t.uuid('connector_id').notNullable().references('connectors.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('topic').notNullable();
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.binary('body');
    t.text('outcome').notNullable().defaultTo('pending');
    t.text('reason');
    t.bigInteger('duplicate_of');
    t.timestamp('mapped_at', { useTz: true });
  });
  await knex.raw('CREATE UNIQUE INDEX connector_deliveries_name ON connector_deliveries (connector_id, name) WHERE duplicate_of IS NULL');
  await knex.raw('CREATE INDEX connector_deliveries_recent ON connector_deliveries (connector_id, id DESC)');
  await knex.raw(
    "ALTER TABLE connector_deliveries ADD CONSTRAINT connector_deliveries_outcome CHECK (outcome IN ('pending', 'stored', 'duplicate', 'ignored', 'skipped', 'failed'))",
  );
  await knex.schema.createTable('connector_pending_refunds', (t) => {
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('order_id').notNullable();
    t.text('refund_id').notNullable();
    t.decimal('amount', 14, 2).notNullable();
    t.bigInteger('delivery_id');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.primary(['workspace_id', 'refund_id']);
    t.index(['workspace_id', 'order_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('connector_pending_refunds');
  await knex.schema.dropTableIfExists('connector_deliveries');
  await knex.schema.dropTableIfExists('connectors');
}
