import type { Knex } from 'knex';

/**
 * Results: conversion attribution (on the messages rows of 0002), and outgoing webhooks
 * (Standard Webhooks) with their endpoints, rotatable secrets and a delivery outbox.
 */
export async function up(knex: Knex): Promise<void> {
  // One purchase converts at most one (treatment) message: the attribution job relies on it,
  // and a replayed feed batch then fails loudly rather than attributing twice. Held-out rows
  // carry a "would have converted" mark for the holdout rate and are counted apart.
  await knex.raw(`CREATE UNIQUE INDEX messages_conversion_purchase ON messages (conversion_purchase_id)
    WHERE conversion_purchase_id IS NOT NULL AND status <> 'held_out'`);
  // Reports re-read only the purchases that have refunds (see src/results/repo.ts).
  await knex.raw('CREATE INDEX purchases_refunded ON purchases (id) WHERE refunded > 0');
  // Attribution looks a purchase's customer's messages up by customer; the 0002 index
  // (customer_id, sent_at) serves treatment rows, and held-out rows have no sent_at, so that
  // index is enough (customer_id leads it).

  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('url').notNullable();
    t.text('description');
    t.boolean('disabled').notNullable().defaultTo(false);
    t.specificType('event_types', 'text[]'); // null: every type
    // The signing key must be usable to sign, so it is stored as is (like the SMTP/Twilio creds).
    t.text('secret').notNullable();
    // After a rotation the previous secret signs too (a second signature) until it expires.
    t.text('previous_secret');
    t.timestamp('previous_secret_expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'created_at']);
  });

  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.uuid('endpoint_id').notNullable().references('webhook_endpoints.id').onDelete('CASCADE');
    t.bigInteger('message_event_id').notNullable();
    t.text('event_type').notNullable();
    // The webhook-id header: the same on every attempt, so receivers can deduplicate.
    t.text('webhook_id').notNullable();
    t.jsonb('payload').notNullable(); // ids, type, times: never an address or a body
    t.text('status').notNullable().checkIn(['pending', 'delivered', 'failed']);
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true });
    t.integer('last_status_code');
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('delivered_at', { useTz: true });
    t.timestamp('failed_at', { useTz: true });
    // A replayed feed batch inserts nothing twice.
    t.unique(['endpoint_id', 'message_event_id']);
    t.index(['endpoint_id', 'id']);
  });
  await knex.raw("CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending'");
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webhook_deliveries');
  await knex.schema.dropTableIfExists('webhook_endpoints');
  await knex.raw('DROP INDEX IF EXISTS messages_conversion_purchase');
  await knex.raw('DROP INDEX IF EXISTS purchases_refunded');
}
