import type { Knex } from 'knex';

/**
 * Which purchase model a fit used (rows before this are BG/NBD fits), the churn model learned with
 * it (coefficients, or the rule it fell back to and why) and the validation the fit ran on the
 * workspace's own history. Both are small JSON documents read whole by GET /v1/predictions/model.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('prediction_fits', (t) => {
    t.text('model').notNullable().defaultTo('bg-nbd');
    t.jsonb('churn');
    t.jsonb('validation');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('prediction_fits', (t) => {
    t.dropColumn('validation');
    t.dropColumn('churn');
    t.dropColumn('model');
  });
}
