import type { Knex } from 'knex';

/**
 * The shared ground of sending: templates, campaigns, segments, the message outbox (one row per
 * intended message, including the skipped ones with their reason), and prediction/score columns
 * on customer_stats. Domain migrations after this one add their own tables.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('customer_stats', (t) => {
    t.double('p_alive');
    t.double('churn_risk');
    t.double('expected_purchases_90d');
    t.decimal('predicted_spend_365d', 14, 2);
    t.integer('lead_score').notNullable().defaultTo(0);
    t.timestamp('scored_at', { useTz: true });
  });
  await knex.raw('CREATE INDEX customer_stats_ws_churn ON customer_stats (workspace_id, churn_risk)');

  await knex.schema.createTable('segments', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('kind').notNullable().checkIn(['dynamic', 'static']);
    t.jsonb('definition'); // null for static segments
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'created_at']);
  });
  await knex.schema.createTable('segment_static_members', (t) => {
    t.uuid('segment_id').notNullable().references('segments.id').onDelete('CASCADE');
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.primary(['segment_id', 'customer_id']);
  });

  await knex.schema.createTable('templates', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('channel').notNullable().checkIn(['email', 'sms']);
    t.text('subject');
    t.text('body').notNullable();
    t.text('format').notNullable().checkIn(['mjml', 'html', 'text']);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'created_at']);
  });

  await knex.schema.createTable('campaigns', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('channel').notNullable().checkIn(['email', 'sms']);
    t.uuid('template_id').notNullable().references('templates.id');
    t.specificType('segment_ids', 'uuid[]').notNullable();
    t.specificType('exclude_segment_ids', 'uuid[]').notNullable().defaultTo('{}');
    t.integer('holdout_percent').notNullable().defaultTo(0);
    t.jsonb('variants').notNullable().defaultTo('[]'); // [{key, templateId, weight}]
    t.jsonb('ab_test'); // winner rule and result (results issue)
    t.text('status').notNullable().checkIn(['draft', 'scheduled', 'sending', 'sent', 'cancelled', 'failed']);
    t.timestamp('scheduled_at', { useTz: true });
    t.timestamp('started_at', { useTz: true });
    t.timestamp('fanned_out_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    // Fan-out checkpoint: the last customer id whose batch is committed to the outbox.
    t.bigInteger('fanout_cursor');
    t.text('failure');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'created_at']);
    t.index(['status', 'scheduled_at']);
  });

  // The outbox. Every intended message is a row, skipped ones included (status 'skipped' with
  // skip_reason), so that counts and reports are plain aggregates over one table.
  await knex.schema.createTable('messages', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.uuid('campaign_id').references('campaigns.id').onDelete('CASCADE');
    t.uuid('automation_id'); // FK added by the automations migration
    t.bigInteger('enrollment_id'); // automation entry this message belongs to
    t.integer('step_index');
    t.bigInteger('customer_id').references('customers.id').onDelete('SET NULL');
    t.text('channel').notNullable().checkIn(['email', 'sms']);
    t.uuid('template_id');
    t.text('variant');
    // Normalised email or E.164 phone; blanked on erasure. Dedup keys use it per campaign.
    t.text('address');
    t.text('status').notNullable().checkIn(['queued', 'sending', 'sent', 'delivered', 'failed', 'unknown', 'skipped', 'held_out', 'cancelled']);
    t.text('skip_reason'); // unsubscribed | no_address | frequency_cap | duplicate | held_out | quiet_hours ...
    t.timestamp('send_after', { useTz: true }); // quiet-hours deferral
    t.text('provider_id');
    t.text('error');
    t.integer('attempts').notNullable().defaultTo(0);
    // Customer attributes as they were at send time, for per-segment reports.
    t.jsonb('snapshot').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('claimed_at', { useTz: true });
    t.timestamp('sent_at', { useTz: true });
    t.timestamp('delivered_at', { useTz: true });
    t.timestamp('failed_at', { useTz: true });
    t.timestamp('opened_at', { useTz: true });
    t.timestamp('clicked_at', { useTz: true });
    t.timestamp('unsubscribed_at', { useTz: true });
    t.timestamp('converted_at', { useTz: true });
    t.bigInteger('conversion_purchase_id');
    t.decimal('revenue', 14, 2);
    t.index(['workspace_id', 'id']);
    t.index(['customer_id', 'sent_at']);
    t.index(['provider_id']);
  });
  await knex.raw('CREATE UNIQUE INDEX messages_campaign_customer ON messages (campaign_id, customer_id) WHERE campaign_id IS NOT NULL AND customer_id IS NOT NULL');
  await knex.raw("CREATE UNIQUE INDEX messages_campaign_address ON messages (campaign_id, channel, address) WHERE campaign_id IS NOT NULL AND address IS NOT NULL AND status NOT IN ('skipped', 'held_out')");
  await knex.raw('CREATE UNIQUE INDEX messages_enrollment_step ON messages (enrollment_id, step_index) WHERE enrollment_id IS NOT NULL');
  await knex.raw('CREATE INDEX messages_campaign_status ON messages (campaign_id, status, id)');
  await knex.raw('CREATE INDEX messages_automation ON messages (automation_id, step_index) WHERE automation_id IS NOT NULL');
  await knex.raw("CREATE INDEX messages_due ON messages (send_after) WHERE status = 'queued'");

  // Every change of a message's state or engagement, appended by whoever makes it (dispatch,
  // status callbacks, open/click/unsubscribe, attribution): the source of outgoing webhooks.
  await knex.schema.createTable('message_events', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.bigInteger('message_id').notNullable().references('messages.id').onDelete('CASCADE');
    t.text('type').notNullable().checkIn(['sent', 'delivered', 'failed', 'opened', 'clicked', 'unsubscribed', 'converted']);
    t.timestamp('occurred_at', { useTz: true }).notNullable();
    t.jsonb('data').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['message_id']);
  });
  await knex.raw('CREATE INDEX message_events_created ON message_events (created_at, id)');

  // Consumers of the ingest feed (attribution, automation triggers) keep their own position in
  // purchases/events by id, so that nothing they must see can be lost with a Redis job.
  await knex.schema.createTable('feed_cursors', (t) => {
    t.text('consumer').primary();
    t.bigInteger('last_id').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw('CREATE INDEX events_created ON events (created_at, id)');
  await knex.raw('CREATE INDEX purchases_created ON purchases (created_at, id)');
}

export async function down(knex: Knex): Promise<void> {
  for (const table of ['feed_cursors', 'message_events', 'messages', 'campaigns', 'templates', 'segment_static_members', 'segments']) {
    await knex.schema.dropTableIfExists(table);
  }
  await knex.raw('DROP INDEX IF EXISTS customer_stats_ws_churn');
  await knex.raw('DROP INDEX IF EXISTS events_created');
  await knex.raw('DROP INDEX IF EXISTS purchases_created');
  await knex.schema.alterTable('customer_stats', (t) => {
    t.dropColumns('p_alive', 'churn_risk', 'expected_purchases_90d', 'predicted_spend_365d', 'lead_score', 'scored_at');
  });
}
