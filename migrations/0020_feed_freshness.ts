import type { Knex } from 'knex';

/**
 * How fresh a feed consumer is: caught_up_at is a time before which every row of its feed that
 * was committed has been consumed (src/feed.ts works it out from the transaction horizon). The
 * attribution consumer's is the reports' attributedThrough.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('feed_cursors', (t) => {
    t.timestamp('caught_up_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('feed_cursors', (t) => {
    t.dropColumn('caught_up_at');
  });
}
