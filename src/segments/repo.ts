import type { Knex } from 'knex';
import { AppError, notFound } from '../errors';
import type { SegmentNode } from './schema';
import { Conn, countMatching, evaluatedTree, expand, membersQuery } from './service';

/** All SQL of the segments domain that is not the compiled rule itself. */
export interface SegmentRow {
  id: string;
  workspace_id: string;
  name: string;
  kind: 'dynamic' | 'static';
  source: SegmentNode | null;
  definition: SegmentNode | null;
  refs: string[];
  created_at: Date;
  updated_at: Date;
}

export function segmentView(r: SegmentRow, memberCount?: number) {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    definition: r.kind === 'static' ? null : (r.source ?? r.definition),
    ...(memberCount === undefined ? {} : { memberCount }),
    createdAt: r.created_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
  };
}

export async function getSegment(db: Conn, workspaceId: string, id: string): Promise<SegmentRow> {
  const row = await db('segments').where({ workspace_id: workspaceId, id }).first();
  if (!row) throw notFound('segment');
  return row;
}

export async function listSegments(db: Conn, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<SegmentRow[]> {
  const q = db('segments').where({ workspace_id: workspaceId }).orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(limit + 1);
  if (after) q.whereRaw('(created_at, id) > (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return q.select('*');
}

const json = (v: unknown) => (v === null ? null : JSON.stringify(v));

export async function insertDynamic(db: Conn, workspaceId: string, name: string, source: SegmentNode, definition: SegmentNode, refs: string[], now: Date): Promise<SegmentRow> {
  const [row] = await db('segments')
    .insert({ workspace_id: workspaceId, name, kind: 'dynamic', source: json(source), definition: json(definition), refs, created_at: now, updated_at: now })
    .returning('*');
  return row;
}

/** A static segment holding exactly the given customers (ids), in one statement. */
export async function insertStatic(trx: Knex.Transaction, workspaceId: string, name: string, now: Date, members: Knex.QueryBuilder | string[]): Promise<SegmentRow> {
  const [row] = await trx('segments').insert({ workspace_id: workspaceId, name, kind: 'static', created_at: now, updated_at: now }).returning('*');
  if (Array.isArray(members)) {
    for (let i = 0; i < members.length; i += 10000) {
      const chunk = members.slice(i, i + 10000);
      await trx.raw('INSERT INTO segment_static_members (segment_id, customer_id) SELECT ?::uuid, unnest(?::bigint[]) ON CONFLICT DO NOTHING', [row.id, chunk]);
    }
  } else {
    // INSERT ... SELECT with the compiled query's own bindings: nothing is inlined as text.
    await trx
      .into(trx.raw('segment_static_members (segment_id, customer_id)'))
      .insert(trx.select(trx.raw('?::uuid', [row.id]), 'm.customer_id').from(members.as('m')));
  }
  return row;
}

/** Customer ids of the workspace matching external ids, emails or phones. */
export async function customerIdsBy(db: Conn, workspaceId: string, column: 'external_id' | 'email' | 'phone', values: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < values.length; i += 10000) {
    const rows = await db('customers').where({ workspace_id: workspaceId }).whereIn(column, values.slice(i, i + 10000)).select('id', `${column} as v`);
    for (const r of rows) out.set(r.v, String(r.id));
  }
  return out;
}

/** Members of a static segment. */
export async function staticCount(db: Conn, segmentId: string): Promise<number> {
  const row = await db('segment_static_members').where({ segment_id: segmentId }).count('* as n').first();
  return Number(row?.n ?? 0);
}

/** Re-inlines every segment whose source references `id`, after `id` changed. */
export async function refreshDependents(trx: Knex.Transaction, workspaceId: string, id: string, now: Date): Promise<void> {
  const deps: SegmentRow[] = await trx('segments').where({ workspace_id: workspaceId }).whereRaw('? = ANY(refs)', [id]).select('*');
  for (const d of deps) {
    if (!d.source) continue;
    const e = await expand(trx, workspaceId, d.source, d.id);
    await trx('segments').where({ id: d.id }).update({ definition: json(e.node), refs: e.refs, updated_at: now });
  }
}

export async function deleteSegment(trx: Knex.Transaction, workspaceId: string, id: string): Promise<void> {
  await getSegment(trx, workspaceId, id);
  const user = await trx('segments').where({ workspace_id: workspaceId }).whereRaw('? = ANY(refs)', [id]).first('id');
  if (user) throw new AppError('conflict', 'segment is referenced by another segment', [{ path: 'id', message: `used by segment ${user.id}` }]);
  // A scheduled or sending campaign would be left with nothing to fan out (and stay 'sending');
  // an enabled automation would silently stop admitting anyone. Cancel or disable them first.
  const campaign = await trx('campaigns')
    .where({ workspace_id: workspaceId })
    .whereIn('status', ['scheduled', 'sending'])
    .andWhere((w) => w.whereRaw('?::uuid = ANY(segment_ids)', [id]).orWhereRaw('?::uuid = ANY(exclude_segment_ids)', [id]))
    .orderBy('created_at')
    .first('id', 'status');
  if (campaign) throw new AppError('conflict', 'segment is used by a campaign that is scheduled or sending; cancel it first', [{ path: 'id', message: `used by campaign ${campaign.id} (${campaign.status})` }]);
  const automation = await trx('automations').where({ workspace_id: workspaceId, segment_id: id, enabled: true }).orderBy('created_at').first('id');
  if (automation) throw new AppError('conflict', 'segment triggers an enabled automation; disable it first', [{ path: 'id', message: `used by automation ${automation.id}` }]);
  await trx('segments').where({ workspace_id: workspaceId, id }).delete();
}

export async function countOf(db: Conn, workspaceId: string, node: SegmentNode, now: Date): Promise<number> {
  return countMatching(db, workspaceId, node, now);
}

const PROFILE = ['c.id', 'c.external_id', 'c.email', 'c.phone', 'c.first_name', 'c.last_name', 'c.country', 'c.city'];

export function memberView(r: Record<string, any>) {
  return { externalId: r.external_id, email: r.email, phone: r.phone, firstName: r.first_name, lastName: r.last_name, country: r.country?.trim() ?? null, city: r.city };
}

/** A page of members ordered by internal id (keyset), `afterId` exclusive. */
export async function membersPage(db: Conn, workspaceId: string, node: SegmentNode, now: Date, limit: number, afterId?: string) {
  const q = db('customers as c')
    .whereIn('c.id', membersQuery(db, workspaceId, node, now))
    .where('c.workspace_id', workspaceId)
    .orderBy('c.id')
    .limit(limit + 1)
    .select(PROFILE);
  if (afterId) q.where('c.id', '>', afterId);
  return q;
}

export const treeOf = evaluatedTree;
