import type { Knex } from 'knex';
import { bindings } from '../db';
import { notFound } from '../errors';
import type { AbTestState, Variant } from './schema';

type Conn = Knex | Knex.Transaction;

export interface CampaignRow {
  id: string;
  workspace_id: string;
  name: string;
  channel: 'email' | 'sms';
  template_id: string;
  segment_ids: string[];
  exclude_segment_ids: string[];
  holdout_percent: number;
  variants: Variant[];
  ab_test: AbTestState | null;
  status: 'draft' | 'scheduled' | 'sending' | 'sent' | 'cancelled' | 'failed';
  scheduled_at: Date | null;
  started_at: Date | null;
  fanned_out_at: Date | null;
  finished_at: Date | null;
  fanout_cursor: string | null;
  failure: string | null;
  created_at: Date;
  updated_at: Date;
}

export async function insertCampaign(db: Conn, row: Omit<CampaignRow, 'id' | 'started_at' | 'fanned_out_at' | 'finished_at' | 'fanout_cursor' | 'failure' | 'updated_at'>): Promise<CampaignRow> {
  const [out] = await db('campaigns')
    .insert({ ...row, variants: JSON.stringify(row.variants), ab_test: row.ab_test ? JSON.stringify(row.ab_test) : null, updated_at: row.created_at })
    .returning('*');
  return out as CampaignRow;
}

export async function findCampaign(db: Conn, workspaceId: string, id: string, forUpdate = false): Promise<CampaignRow | undefined> {
  const q = db('campaigns').where({ workspace_id: workspaceId, id });
  return (forUpdate ? q.forUpdate() : q).first() as Promise<CampaignRow | undefined>;
}

export async function requireCampaign(db: Conn, workspaceId: string, id: string): Promise<CampaignRow> {
  const row = await findCampaign(db, workspaceId, id);
  if (!row) throw notFound('campaign');
  return row;
}

/** Workers address a campaign by id alone (job data is ids only). */
export async function lockCampaign(trx: Knex.Transaction, id: string): Promise<CampaignRow | undefined> {
  return trx('campaigns').where({ id }).forUpdate().first() as Promise<CampaignRow | undefined>;
}

export async function listCampaigns(db: Conn, workspaceId: string, limit: number, after?: { t: string; id: string }): Promise<CampaignRow[]> {
  const q = db('campaigns').where({ workspace_id: workspaceId });
  if (after) q.andWhereRaw('(created_at, id) < (?::timestamptz, ?::uuid)', [after.t, after.id]);
  return q.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit) as Promise<CampaignRow[]>;
}

/** A state change that happens only from the given states; returns the row, or undefined when it did not apply. */
export async function transition(db: Conn, workspaceId: string | null, id: string, from: CampaignRow['status'][], set: Record<string, unknown>): Promise<CampaignRow | undefined> {
  const q = db('campaigns').where({ id }).whereIn('status', from);
  if (workspaceId) q.andWhere({ workspace_id: workspaceId });
  const [row] = await q.update({ ...set, updated_at: set.updated_at ?? db.fn.now() }).returning('*');
  return row as CampaignRow | undefined;
}

export async function cancelQueuedMessages(db: Conn, campaignId: string): Promise<number> {
  return db('messages').where({ campaign_id: campaignId, status: 'queued' }).update({ status: 'cancelled' });
}

/** Segments of this workspace among these ids (a segment of another workspace is simply absent). */
export async function segmentsInWorkspace(db: Conn, workspaceId: string, ids: string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await db('segments').where({ workspace_id: workspaceId }).whereIn('id', ids).select('id');
  return new Set(rows.map((r) => String(r.id)));
}

export async function templateChannels(db: Conn, workspaceId: string, ids: string[]): Promise<Map<string, string>> {
  const rows = await db('templates').where({ workspace_id: workspaceId }).whereIn('id', ids).select('id', 'channel');
  return new Map(rows.map((r) => [String(r.id), String(r.channel)]));
}

export interface CampaignCounts {
  targeted: number;
  heldOut: number;
  queued: number;
  sent: number;
  delivered: number;
  failed: number;
  unknown: number;
  cancelled: number;
  suppressed: { unsubscribed: number; noAddress: number; frequencyCap: number; quietHours: number; duplicate: number };
}

/** Plain aggregates over the outbox: every intended message is a row, skipped ones included. */
export async function campaignCounts(db: Conn, campaignId: string): Promise<CampaignCounts> {
  const { rows } = await db.raw(
    `SELECT count(*)::int AS targeted,
            count(*) FILTER (WHERE status = 'held_out')::int AS held_out,
            count(*) FILTER (WHERE status IN ('queued', 'sending'))::int AS queued,
            count(sent_at)::int AS sent,
            count(delivered_at)::int AS delivered,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'unknown')::int AS unknown,
            count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled,
            count(*) FILTER (WHERE skip_reason = 'unsubscribed')::int AS unsubscribed,
            count(*) FILTER (WHERE skip_reason = 'no_address')::int AS no_address,
            count(*) FILTER (WHERE skip_reason = 'frequency_cap')::int AS frequency_cap,
            count(*) FILTER (WHERE skip_reason = 'duplicate')::int AS duplicate,
            count(*) FILTER (WHERE quiet_deferred)::int AS quiet_hours
       FROM messages WHERE campaign_id = ?`,
    [campaignId],
  );
  const r = rows[0];
  return {
    targeted: r.targeted,
    heldOut: r.held_out,
    queued: r.queued,
    sent: r.sent,
    delivered: r.delivered,
    failed: r.failed,
    unknown: r.unknown,
    cancelled: r.cancelled,
    suppressed: { unsubscribed: r.unsubscribed, noAddress: r.no_address, frequencyCap: r.frequency_cap, quietHours: r.quiet_hours, duplicate: r.duplicate },
  };
}

// ---- worker-side queries ----

export async function scheduledCampaigns(db: Conn): Promise<Array<Pick<CampaignRow, 'id' | 'scheduled_at'>>> {
  return db('campaigns').where({ status: 'scheduled' }).select('id', 'scheduled_at');
}

export async function unfinishedFanouts(db: Conn): Promise<string[]> {
  const rows = await db('campaigns').where({ status: 'sending' }).whereNull('fanned_out_at').select('id');
  return rows.map((r) => String(r.id));
}

export async function dueAbDecisions(db: Conn, now: Date): Promise<string[]> {
  const { rows } = await db.raw(
    `SELECT id FROM campaigns WHERE status = 'sending' AND ab_test->>'phase' = 'testing' AND fanned_out_at IS NOT NULL
        AND (ab_test->>'decideAt')::timestamptz <= ?`,
    [now],
  );
  return (rows as Array<{ id: string }>).map((r) => String(r.id));
}

/** Campaigns whose fan-out is done and that have nothing queued or in flight: they are sent. */
export async function completeFinished(db: Conn, now: Date): Promise<string[]> {
  const { rows } = await db.raw(
    `UPDATE campaigns c SET status = 'sent', finished_at = ?, updated_at = ?
      WHERE c.status = 'sending' AND c.fanned_out_at IS NOT NULL AND coalesce(c.ab_test->>'phase', 'decided') = 'decided'
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.campaign_id = c.id AND m.workspace_id = c.workspace_id AND m.status IN ('queued', 'sending'))
      RETURNING c.id`,
    bindings([now, now]),
  );
  return (rows as Array<{ id: string }>).map((r) => String(r.id));
}

/** Messages of a workspace, newest first, keyset on id; filters are bound values only. */
export async function listMessages(
  db: Conn,
  workspaceId: string,
  f: { campaignId?: string; automationId?: string; status?: string; customerExternalId?: string },
  limit: number,
  beforeId?: string,
) {
  const q = db('messages as m')
    .leftJoin('customers as c', (j) => j.on('c.id', 'm.customer_id').andOn('c.workspace_id', 'm.workspace_id'))
    .where('m.workspace_id', workspaceId)
    .select('m.*', 'c.external_id as customer_external_id')
    .orderBy('m.id', 'desc')
    .limit(limit);
  if (f.campaignId) q.andWhere('m.campaign_id', f.campaignId);
  if (f.automationId) q.andWhere('m.automation_id', f.automationId);
  if (f.status) q.andWhere('m.status', f.status);
  if (f.customerExternalId) q.andWhere('c.external_id', f.customerExternalId);
  if (beforeId) q.andWhere('m.id', '<', beforeId);
  return q;
}
