import type { Knex } from 'knex';

/**
 * Automations: trigger rules with steps walked per customer. Segment membership is recorded with
 * entered/exited times so that "entered the segment" is a transition, not "is in it now"; each
 * walk through an automation is an enrollment whose id keys its messages (messages has a unique
 * index on (enrollment_id, step_index)), so a send step is queued at most once per entry.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('automations', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.text('name').notNullable();
    t.text('trigger_type').notNullable().checkIn(['segmentEntry', 'event', 'purchase']);
    // A deleted segment leaves its automations in place, with nothing to evaluate.
    t.uuid('segment_id').references('segments.id').onDelete('SET NULL');
    t.text('event_type');
    t.text('schedule'); // cron, segmentEntry only
    t.jsonb('steps').notNullable();
    t.jsonb('exit_when'); // "purchased" or a segment node
    t.integer('reentry_after_days'); // null: once ever
    t.boolean('enabled').notNullable();
    // Memberships of the segment with a larger id are new to this automation. Ids rather than
    // times: they are assigned under the segment's evaluation lock, so they order entries exactly.
    t.bigInteger('members_seen_id');
    t.timestamp('last_evaluated_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'created_at']);
  });
  await knex.raw('CREATE INDEX automations_trigger ON automations (trigger_type, workspace_id) WHERE enabled');

  await knex.schema.createTable('segment_memberships', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.uuid('segment_id').notNullable().references('segments.id').onDelete('CASCADE');
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.timestamp('entered_at', { useTz: true }).notNullable();
    t.timestamp('exited_at', { useTz: true });
  });
  // One open membership per customer and segment; closed ones stay as history.
  await knex.raw('CREATE UNIQUE INDEX segment_memberships_open ON segment_memberships (segment_id, customer_id) WHERE exited_at IS NULL');
  await knex.raw('CREATE INDEX segment_memberships_seq ON segment_memberships (segment_id, id)');
  await knex.raw('CREATE INDEX segment_memberships_customer ON segment_memberships (customer_id)');

  await knex.schema.createTable('automation_enrollments', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.uuid('automation_id').notNullable().references('automations.id').onDelete('CASCADE');
    t.bigInteger('customer_id').notNullable().references('customers.id').onDelete('CASCADE');
    t.timestamp('entered_at', { useTz: true }).notNullable();
    t.integer('step_index').notNullable().defaultTo(0); // the next step to run
    t.timestamp('next_step_at', { useTz: true });
    t.text('state').notNullable().checkIn(['active', 'completed', 'exited', 'cancelled']);
    t.text('exit_reason'); // purchased | exit_segment | disabled | deleted
    t.bigInteger('trigger_ref'); // the purchase or event id that fired it
    t.timestamp('finished_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  // At most one walk at a time per automation and customer: two evaluations racing cannot both enroll.
  await knex.raw("CREATE UNIQUE INDEX automation_enrollments_active ON automation_enrollments (automation_id, customer_id) WHERE state = 'active'");
  await knex.raw("CREATE INDEX automation_enrollments_due ON automation_enrollments (next_step_at) WHERE state = 'active'");
  await knex.raw('CREATE INDEX automation_enrollments_history ON automation_enrollments (automation_id, customer_id, entered_at)');
  await knex.raw('CREATE INDEX automation_enrollments_customer ON automation_enrollments (customer_id)');

  await knex.raw('ALTER TABLE messages ADD CONSTRAINT messages_automation_fk FOREIGN KEY (automation_id) REFERENCES automations (id) ON DELETE SET NULL');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_automation_fk');
  for (const table of ['automation_enrollments', 'segment_memberships', 'automations']) {
    await knex.schema.dropTableIfExists(table);
  }
}
