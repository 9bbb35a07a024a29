import type { Db } from '../../src/db';

/** Row counts of everything a workspace holds: "nothing was written" is asserted by comparing them. */
export async function workspaceCounts(db: Db, workspaceId: string) {
  const tables = ['customers', 'customer_stats', 'purchases', 'purchase_items', 'refunds', 'events', 'suppressions', 'api_keys'];
  const out: Record<string, unknown> = {};
  for (const t of tables) {
    const [{ n }] = await db(t).where({ workspace_id: workspaceId }).count({ n: '*' });
    out[t] = Number(n);
  }
  const [ws] = await db('workspaces').where({ id: workspaceId }).select('settings', 'timezone');
  out.settings = JSON.stringify(ws);
  return out;
}
