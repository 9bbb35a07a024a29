import type { Knex } from 'knex';

/**
 * Predictions and lead scoring: each model fit of a workspace (kept, not overwritten, so that a
 * forecast can be traced to the parameters that made it) and the workspace's scoring rules.
 * The per-customer results live on customer_stats (columns added in 0002).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('prediction_fits', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('workspace_id').notNullable().references('workspaces.id').onDelete('CASCADE');
    t.timestamp('as_of', { useTz: true }).notNullable();
    t.text('time_unit').notNullable().checkIn(['day', 'week']);
    t.integer('customers').notNullable();
    t.jsonb('params').notNullable(); // {r, alpha, a, b}
    t.double('log_likelihood').notNullable();
    t.integer('spend_customers').notNullable();
    t.jsonb('spend_params').notNullable(); // {p, q, gamma}
    t.integer('scored_customers'); // null until every customer has been scored with this fit
    t.timestamp('scored_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['workspace_id', 'id']);
  });

  // Which fit scored the row: after a re-fit, rows it did not reach (no purchase up to asOf any
  // more) are blanked by this, without a second pass over the rows it did reach.
  await knex.schema.alterTable('customer_stats', (t) => {
    t.bigInteger('prediction_fit_id');
  });

  await knex.schema.createTable('scoring_rules', (t) => {
    t.uuid('workspace_id').primary().references('workspaces.id').onDelete('CASCADE');
    t.jsonb('rules').notNullable().defaultTo('[]'); // [{name, points, when}]
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('scored_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('scoring_rules');
  await knex.schema.alterTable('customer_stats', (t) => {
    t.dropColumn('prediction_fit_id');
  });
  await knex.schema.dropTableIfExists('prediction_fits');
}
