import type { Db } from '../db';
import { evaluatedTree, matchingCustomerIds } from '../segments/service';

/** At most this many segments are evaluated for one profile. */
const MAX_SEGMENTS = 500;

/**
 * The workspace's segments this customer is in now: each segment's rule evaluated live for the
 * one customer (the compiled query narrowed to their id, an index probe per table it reads), four
 * at a time. Nothing is cached: a purchase a second ago counts.
 */
export async function segmentsOf(db: Db, workspaceId: string, customerId: string, now: Date) {
  const segments = await db('segments').where({ workspace_id: workspaceId }).orderBy('name').limit(MAX_SEGMENTS).select('id', 'name', 'kind', 'definition');
  const member = new Array<boolean>(segments.length).fill(false);
  for (let i = 0; i < segments.length; i += 4) {
    await Promise.all(
      segments.slice(i, i + 4).map(async (s, k) => {
        member[i + k] = (await matchingCustomerIds(db, workspaceId, evaluatedTree(s), [customerId], now)).size > 0;
      }),
    );
  }
  return segments.filter((_, i) => member[i]).map((s) => ({ id: s.id as string, name: s.name as string, kind: s.kind as string }));
}
