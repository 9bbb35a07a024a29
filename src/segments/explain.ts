import type { Conn } from './service';
import { expand, nodeFragment } from './service';
import type { SegmentRow } from './repo';
import type { SegmentNode } from './schema';
import { PRESETS } from './presets';

/**
 * GET /v1/segments/:id/explain/:externalId: the tree as the user wrote it, each node marked
 * `matched`. All nodes are evaluated in one query (one boolean column per node) for that customer.
 */
type Marked = Record<string, unknown> & { matched: boolean };

export async function explain(db: Conn, workspaceId: string, seg: SegmentRow, customerId: string, now: Date) {
  if (seg.kind === 'static') {
    const m = await db('segment_static_members').where({ segment_id: seg.id, customer_id: customerId }).first('customer_id');
    return { segmentId: seg.id, kind: 'static', matched: !!m, tree: null };
  }
  const source = seg.source ?? seg.definition!;
  const cols: Array<{ sql: string; bindings: unknown[] }> = [];
  // Each node is evaluated as written; segment references are inlined for evaluation only.
  const plan = async (n: SegmentNode): Promise<(v: boolean[]) => Marked> => {
    const self = cols.length;
    const evalNode = 'segment' in n ? (await expand(db, workspaceId, n)).node : n;
    cols.push(nodeFragment(workspaceId, evalNode, now));
    const mark = (extra: Record<string, unknown>) => (v: boolean[]) => ({ ...extra, matched: v[self] === true });
    if ('all' in n || 'any' in n) {
      const key = 'all' in n ? 'all' : 'any';
      const kids = await Promise.all(((n as Record<string, SegmentNode[]>)[key] ?? []).map(plan));
      return (v) => ({ [key]: kids.map((k) => k(v)), matched: v[self] === true });
    }
    if ('not' in n) {
      const inner = await plan(n.not);
      return (v) => ({ not: inner(v), matched: v[self] === true });
    }
    if ('preset' in n) {
      const inner = await plan(PRESETS[n.preset].definition);
      return (v) => ({ preset: n.preset, rule: inner(v), matched: v[self] === true });
    }
    return mark({ ...n });
  };
  const build = await plan(source);
  const select = cols.map((c, i) => `coalesce((${c.sql}), false) AS n${i}`).join(', ');
  const row = await db
    .from('customers as c')
    .leftJoin('customer_stats as s', 's.customer_id', 'c.id')
    .where({ 'c.workspace_id': workspaceId, 'c.id': customerId })
    .select(db.raw(select, cols.flatMap((c) => c.bindings) as never[]))
    .first();
  const values = cols.map((_, i) => row?.[`n${i}`] === true);
  const tree = build(values);
  return { segmentId: seg.id, kind: 'dynamic', matched: tree.matched, tree };
}
