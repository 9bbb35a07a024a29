import type { Knex } from 'knex';

/**
 * Segments keep two trees: `source`, the definition as the user wrote it (shown by the API), and
 * `definition`, the same tree with every live segment it references inlined, which is what gets
 * evaluated (and what other domains read), so that evaluation never has to load other segments.
 * `refs` lists every segment the source references, directly or not, for cycle checks, for
 * re-inlining dependents when a segment changes, and for refusing to delete a referenced one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('segments', (t) => {
    t.jsonb('source');
    t.specificType('refs', 'uuid[]').notNullable().defaultTo('{}');
  });
  await knex.raw('CREATE INDEX segments_refs ON segments USING gin (refs)');
  await knex.raw('CREATE INDEX segments_ws_id ON segments (workspace_id, id)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX IF EXISTS segments_ws_id');
  await knex.raw('DROP INDEX IF EXISTS segments_refs');
  await knex.schema.alterTable('segments', (t) => {
    t.dropColumns('source', 'refs');
  });
}
