import type { Db } from '../../src/db';

/**
 * Rows for results tests, written straight to the shared schema so these tests do not depend on
 * campaign fan-out or dispatch: a template, a campaign or automation, and message rows with the
 * timestamps a real send would have left on them.
 */
export async function makeCampaign(db: Db, workspaceId: string, opts: { name?: string; startedAt: Date; holdoutPercent?: number; channel?: 'email' | 'sms' }) {
  const [tpl] = await db('templates')
    .insert({ workspace_id: workspaceId, name: 't', channel: opts.channel ?? 'email', subject: 's', body: 'b', format: 'text' })
    .returning('id');
  const [c] = await db('campaigns')
    .insert({
      workspace_id: workspaceId,
      name: opts.name ?? 'campaign',
      channel: opts.channel ?? 'email',
      template_id: tpl.id,
      segment_ids: [],
      holdout_percent: opts.holdoutPercent ?? 0,
      status: 'sent',
      started_at: opts.startedAt,
      finished_at: opts.startedAt,
    })
    .returning('id');
  return String(c.id);
}

export async function makeAutomation(db: Db, workspaceId: string) {
  const [a] = await db('automations')
    .insert({ workspace_id: workspaceId, name: 'flow', trigger_type: 'purchase', steps: JSON.stringify([]), enabled: true })
    .returning('id');
  return String(a.id);
}

export async function customerId(db: Db, workspaceId: string, externalId: string): Promise<string> {
  const row = await db('customers').where({ workspace_id: workspaceId, external_id: externalId }).first('id');
  if (!row) throw new Error(`no customer ${externalId}`);
  return String(row.id);
}

export interface MessageSpec {
  campaignId?: string;
  automationId?: string;
  stepIndex?: number;
  customerId: string;
  status: 'queued' | 'sent' | 'delivered' | 'failed' | 'skipped' | 'held_out';
  skipReason?: string;
  variant?: string;
  snapshot?: Record<string, unknown>;
  createdAt?: Date;
  sentAt?: Date;
  deliveredAt?: Date;
  openedAt?: Date;
  clickedAt?: Date;
  address?: string;
}

export async function makeMessage(db: Db, workspaceId: string, m: MessageSpec): Promise<string> {
  const [row] = await db('messages')
    .insert({
      workspace_id: workspaceId,
      campaign_id: m.campaignId ?? null,
      automation_id: m.automationId ?? null,
      step_index: m.stepIndex ?? null,
      enrollment_id: null,
      customer_id: m.customerId,
      channel: 'email',
      variant: m.variant ?? null,
      address: m.status === 'held_out' || m.status === 'skipped' ? null : (m.address ?? `${m.customerId}-${Math.random().toString(36).slice(2)}@example.test`),
      status: m.status,
      skip_reason: m.status === 'held_out' ? 'held_out' : (m.skipReason ?? null),
      snapshot: JSON.stringify(m.snapshot ?? {}),
      created_at: m.createdAt ?? m.sentAt ?? new Date(),
      sent_at: m.sentAt ?? null,
      delivered_at: m.deliveredAt ?? null,
      opened_at: m.openedAt ?? null,
      clicked_at: m.clickedAt ?? null,
    })
    .returning('id');
  return String(row.id);
}

export const HOUR = 3600_000;
export const DAY = 24 * HOUR;
export const at = (base: Date, ms: number) => new Date(base.getTime() + ms);
