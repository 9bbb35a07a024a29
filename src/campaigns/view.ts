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
