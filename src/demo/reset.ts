import type { Knex } from 'knex';

/**
 * Removes every workspace of this name and everything in it. Some tables carry workspace_id
 * without a foreign key (the ingest tables, for speed), so a delete of the workspace row alone
 * would leave their rows behind: each table with a workspace_id column is emptied of the
 * workspace's rows first, in passes, until foreign keys between them stop refusing.
 */
export async function deleteWorkspacesNamed(db: Knex, name: string): Promise<number> {
  const ids = (await db('workspaces').where({ name }).pluck('id')) as string[];
  if (!ids.length) return 0;
  const tables = ((await db('information_schema.columns').where({ table_schema: 'public', column_name: 'workspace_id' }).pluck('table_name')) as string[]).filter((t) => t !== 'workspaces');
  await db.transaction(async (trx) => {
    let left = [...tables];
    for (let pass = 0; left.length && pass < tables.length + 1; pass++) {
      const refused: string[] = [];
      for (const t of left) {
        try {
          // Table names come from the catalogue, not from input; ids are bound.
          await trx.transaction(async (sp) => sp.raw(`DELETE FROM ?? WHERE workspace_id = ANY(?::uuid[])`, [t, ids]));
        } catch {
          refused.push(t);
        }
      }
      left = refused;
    }
    await trx('workspaces').whereIn('id', ids).del();
  });
  return ids.length;
}
