import type { Knex } from 'knex';
import type { CampaignCounts, CampaignRow } from './repo';

const iso = (d: Date | null | undefined) => (d instanceof Date && Number.isFinite(d.getTime()) ? d.toISOString() : null);

export function campaignView(c: CampaignRow, counts: CampaignCounts) {
  return {
    id: c.id,
    name: c.name,
    channel: c.channel,
    templateId: c.template_id,
    segmentIds: c.segment_ids,
    excludeSegmentIds: c.exclude_segment_ids,
    holdoutPercent: c.holdout_percent,
    variants: c.variants.map((v) => ({ key: v.key, templateId: v.templateId, weight: v.weight })),
    abTest: c.ab_test,
    status: c.status,
    scheduledAt: iso(c.scheduled_at),
    startedAt: iso(c.started_at),
    fannedOutAt: iso(c.fanned_out_at),
    finishedAt: iso(c.finished_at),
    createdAt: iso(c.created_at),
    counts,
  };
}

/** Messages of a workspace, newest first, keyset on id; filters are bound values only. */
export async function listMessages(
  db: Knex,
  workspaceId: string,
  f: { campaignId?: string; automationId?: string; status?: string; customerExternalId?: string },
  limit: number,
  beforeId?: string,
) {
  const q = db('messages as m')
    .leftJoin('customers as c', 'c.id', 'm.customer_id')
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

export function messageView(m: Record<string, any>) {
  return {
    id: String(m.id),
    campaignId: m.campaign_id ?? null,
    automationId: m.automation_id ?? null,
    customerExternalId: m.customer_external_id ?? null,
    channel: m.channel,
    templateId: m.template_id ?? null,
    variant: m.variant ?? null,
    address: m.address ?? null,
    status: m.status,
    skipReason: m.skip_reason ?? null,
    quietHoursDeferred: !!m.quiet_deferred,
    sendAfter: iso(m.send_after),
    providerId: m.provider_id ?? null,
    error: m.error ?? null,
    attempts: m.attempts,
    createdAt: iso(m.created_at),
    sentAt: iso(m.sent_at),
    deliveredAt: iso(m.delivered_at),
    failedAt: iso(m.failed_at),
    openedAt: iso(m.opened_at),
    clickedAt: iso(m.clicked_at),
  };
}
