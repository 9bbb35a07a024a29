import type { Knex } from 'knex';
import { AppError, notFound } from '../errors';
import { isUuid } from '../ids';
import { compileNode, compileQuery, CompileContext, Fragment } from './compile';
import type { SegmentNode } from './schema';
import { compileCount } from './count';
import { checkTree } from './validate';

/**
 * Segment logic shared by the routes and by other domains (automations, campaigns, predictions).
 * Trees that are stored or returned by validateDefinition are self-contained: every reference to a
 * live segment is replaced by that segment's own (inlined) tree, and only references to static
 * lists remain. So evaluation (membersQuery) is synchronous and needs no other segment loaded.
 */
export type Conn = Knex | Knex.Transaction;

interface SegmentRow {
  id: string;
  kind: 'dynamic' | 'static';
  source: SegmentNode | null;
  definition: SegmentNode | null;
}

const empty = new Map();

/** Every segment id a tree names directly. */
export function directRefs(node: SegmentNode, out: string[] = []): string[] {
  if ('all' in node) node.all.forEach((n) => directRefs(n, out));
  else if ('any' in node) node.any.forEach((n) => directRefs(n, out));
  else if ('not' in node) directRefs(node.not, out);
  else if ('segment' in node) out.push(node.segment);
  return out;
}

async function loadSegments(db: Conn, workspaceId: string, ids: string[]): Promise<Map<string, SegmentRow>> {
  const rows = ids.length
    ? await db('segments').where({ workspace_id: workspaceId }).whereIn('id', ids).select('id', 'kind', 'source', 'definition')
    : [];
  return new Map(rows.map((r: SegmentRow) => [r.id, r]));
}

export interface Expanded {
  node: SegmentNode;
  /** Every segment referenced, directly or through other segments. */
  refs: string[];
}

/**
 * Largest tree expand() builds (the contract's limit on a segment with its references inlined).
 * Each reference copies the referenced tree, so references to references multiply: S2 = 199
 * references to S1, S3 = 199 to S2, S4 = 199 to S3 would be millions of nodes.
 */
export const MAX_INLINED_NODES = 1000;

/**
 * Inlines live segment references (from their source trees, so that a change to a segment reaches
 * its dependents when they are re-expanded). A reference back to `selfId` or around a loop is a
 * 422 naming the path; an id unknown in the workspace (another workspace's included) is a 404.
 * Nodes are counted as they are built, depth first and one child at a time, so a tree past
 * MAX_INLINED_NODES is a 422 (at the reference that crossed it) after at most that many copies.
 */
export async function expand(db: Conn, workspaceId: string, node: SegmentNode, selfId?: string, pathOf?: Map<string, string>): Promise<Expanded> {
  const refs = new Set<string>();
  const cache = new Map<string, SegmentRow>();
  const load = async (ids: string[]) => {
    const missing = ids.filter((id) => !cache.has(id));
    for (const [id, row] of await loadSegments(db, workspaceId, missing)) cache.set(id, row);
  };
  let built = 0;
  // Inside a referenced segment, problems are reported at the reference in the caller's tree.
  const walk = async (n: SegmentNode, stack: string[], path: string): Promise<SegmentNode> => {
    const sub = (more: string) => (stack.length ? path : `${path}.${more}`);
    // A live reference is replaced by its tree, so it is counted as the nodes of that tree.
    const count = (at: string) => {
      if (++built <= MAX_INLINED_NODES) return;
      throw new AppError('unprocessable', `segment tree is larger than ${MAX_INLINED_NODES} nodes once its segment references are inlined`, [
        { path: at || '(root)', message: `inlining this reference makes the tree larger than ${MAX_INLINED_NODES} nodes` },
      ]);
    };
    if (!('segment' in n)) count(path);
    const each = async (children: SegmentNode[], key: string) => {
      const out: SegmentNode[] = [];
      for (let i = 0; i < children.length; i++) out.push(await walk(children[i]!, stack, sub(`${key}.${i}`)));
      return out;
    };
    if ('all' in n) return { all: await each(n.all, 'all') };
    if ('any' in n) return { any: await each(n.any, 'any') };
    if ('not' in n) return { not: await walk(n.not, stack, sub('not')) };
    if (!('segment' in n)) return n;
    const at = stack.length ? path : (pathOf?.get(n.segment) ?? sub('segment'));
    const id = n.segment.toLowerCase();
    if (id === selfId || stack.includes(id)) {
      throw new AppError('unprocessable', 'segment references form a cycle', [{ path: at, message: 'this reference leads back to the segment itself' }]);
    }
    await load([id]);
    const row = cache.get(id);
    if (!row) throw new AppError('not_found', 'segment not found', [{ path: at, message: 'unknown segment' }]);
    refs.add(id);
    const src = row.source ?? row.definition;
    if (row.kind === 'static' || !src) count(at);
    if (row.kind === 'static') return { segment: id };
    if (!src) return { any: [] };
    return walk(src, [...stack, id], at);
  };
  const out = await walk(node, [], '');
  return { node: out, refs: [...refs] };
}

/**
 * Checks a definition from a request: shape, limits, fields, ops and values (422 naming the path,
 * prefixed with `pathPrefix`), then its segment references (404 for an unknown or foreign one,
 * 422 for a cycle). Returns the self-contained tree to store and evaluate.
 */
export async function validateDefinition(db: Conn, workspaceId: string, raw: unknown, pathPrefix?: string, selfId?: string): Promise<SegmentNode> {
  return (await validateAndExpand(db, workspaceId, raw, pathPrefix, selfId)).node;
}

export async function validateAndExpand(db: Conn, workspaceId: string, raw: unknown, pathPrefix?: string, selfId?: string): Promise<Expanded & { source: SegmentNode }> {
  const checked = checkTree(raw, pathPrefix ? pathPrefix.split('.') : []);
  if (!checked.node) throw new AppError('unprocessable', 'segment definition is invalid', checked.errors);
  const pathOf = new Map(checked.segmentRefs.map((r) => [r.id, r.path]));
  const expanded = await expand(db, workspaceId, checked.node, selfId, pathOf);
  return { ...expanded, source: checked.node };
}

const ctxOf = (workspaceId: string, now: Date): CompileContext => ({ workspaceId, now, segments: empty });

/** The matching customers of a self-contained tree: one column `customer_id`; usable as a subquery. */
export function membersQuery(db: Conn, workspaceId: string, node: SegmentNode, now: Date): Knex.QueryBuilder {
  return compileQuery(db as Knex, node, ctxOf(workspaceId, now));
}

/** `SELECT count(*) AS n` of the matching customers of a self-contained tree (count.ts). */
export function countQuery(db: Conn, workspaceId: string, node: SegmentNode, now: Date): Knex.QueryBuilder {
  return compileCount(db as Knex, node, ctxOf(workspaceId, now));
}

/**
 * Planner settings for a count, local to its transaction. At 1M customers a "purchased category
 * within N days" count de-duplicated ~360k matching items per customer with a hash aggregate
 * planned from the (underestimated: 63k for 212k) number of distinct customers: it spilled to
 * disk, and each parallel worker built its own copy (3x the work; 470-680 ms, 800 ms on one core).
 * Without hash aggregation the planner shares one parallel hash among the workers (about 260 ms;
 * a sort-based de-duplication on one core, about 340 ms); work_mem keeps sorts and hashes in
 * memory; JIT compiling (20-50 ms) cost more than it saved on these sub-second queries.
 */
const COUNT_SETTINGS = "SELECT set_config('enable_hashagg', 'off', true), set_config('work_mem', '64MB', true), set_config('jit', 'off', true)";

/** Runs `fn` in a transaction with the count's planner settings (the count itself, or its EXPLAIN). */
export function withCountSettings<T>(db: Conn, fn: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.transaction(async (trx) => {
    await trx.raw(COUNT_SETTINGS);
    return fn(trx);
  });
}

/** The number of customers matching a self-contained tree now. */
export async function countMatching(db: Conn, workspaceId: string, node: SegmentNode, now: Date): Promise<number> {
  const r = await withCountSettings(db, (trx) => countQuery(trx, workspaceId, node, now).first());
  return Number(r?.n ?? 0);
}

/** Which of the given customers (ids as strings) match the tree now. */
export async function matchingCustomerIds(db: Conn, workspaceId: string, node: SegmentNode, customerIds: string[], now: Date): Promise<Set<string>> {
  if (!customerIds.length) return new Set();
  const rows = await membersQuery(db, workspaceId, node, now).whereIn('c.id', customerIds);
  return new Set(rows.map((r: { customer_id: string | number }) => String(r.customer_id)));
}

/** The boolean of one node for each given customer, for explain. */
export function nodeFragment(workspaceId: string, node: SegmentNode, now: Date): Fragment {
  return compileNode(node, ctxOf(workspaceId, now));
}

/**
 * The audience of a campaign: distinct customers in any of `segmentIds` and none of `excludeIds`.
 * The segments are read here, so this is async (404 for an unknown or foreign id); the query it
 * resolves to is wrapped in an object, because a bare query builder would be run by `await`.
 */
export async function segmentsAudienceQuery(
  db: Conn,
  workspaceId: string,
  segmentIds: string[],
  excludeIds: string[],
  now: Date,
): Promise<{ query: Knex.QueryBuilder }> {
  const ids = [...new Set([...segmentIds, ...excludeIds].map((s) => s.toLowerCase()))];
  if (ids.some((id) => !isUuid(id))) throw notFound('segment');
  const rows = await loadSegments(db, workspaceId, ids);
  if (rows.size !== ids.length) throw notFound('segment');
  const nodeOf = (id: string): SegmentNode => {
    const r = rows.get(id.toLowerCase())!;
    return r.kind === 'static' ? { segment: r.id } : (r.definition ?? { any: [] });
  };
  const include: SegmentNode = { any: segmentIds.map(nodeOf) };
  const node: SegmentNode = excludeIds.length ? { all: [include, { not: { any: excludeIds.map(nodeOf) } }] } : include;
  return { query: membersQuery(db, workspaceId, node, now) };
}

/** The tree stored for a segment row, ready for membersQuery. */
export function evaluatedTree(row: { id: string; kind: string; definition: unknown }): SegmentNode {
  return row.kind === 'static' ? { segment: row.id } : ((row.definition as SegmentNode | null) ?? { any: [] });
}
