import type { Knex } from 'knex';
import type { Db } from '../db';
import { notFound } from '../errors';
import type { Automation, CreateAutomation, PatchAutomation, Step } from './schema';

type Q = Db | Knex.Transaction;

export function toAutomation(r: Record<string, any>): Automation {
  const trigger =
    r.trigger_type === 'segmentEntry'
      ? { type: 'segmentEntry' as const, segmentId: r.segment_id }
      : r.trigger_type === 'event'
        ? { type: 'event' as const, eventType: r.event_type }
        : { type: 'purchase' as const };
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    trigger,
    schedule: r.schedule,
    steps: r.steps as Step[],
    exitWhen: r.exit_when ?? null,
    reentryAfterDays: r.reentry_after_days,
    enabled: r.enabled,
    lastEvaluatedAt: r.last_evaluated_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function insertAutomation(q: Q, workspaceId: string, a: Omit<CreateAutomation, 'schedule'> & { schedule: string | null }, now: Date) {
  const [row] = await q('automations')
    .insert({
      workspace_id: workspaceId,
      name: a.name,
      trigger_type: a.trigger.type,
      segment_id: a.trigger.type === 'segmentEntry' ? a.trigger.segmentId : null,
      event_type: a.trigger.type === 'event' ? a.trigger.eventType : null,
      schedule: a.schedule,
      steps: JSON.stringify(a.steps),
      exit_when: a.exitWhen == null ? null : JSON.stringify(a.exitWhen),
      reentry_after_days: a.reentryAfterDays ?? null,
      enabled: a.enabled,
      created_at: now,
      updated_at: now,
    })
    .returning('*');
  return toAutomation(row);
}

/** The automation, locked for the caller's transaction when `lock` is set; 404 for another workspace's. */
export async function getAutomation(q: Q, workspaceId: string, id: string, lock = false): Promise<Automation> {
  const query = q('automations').where({ workspace_id: workspaceId, id }).first();
  const row = await (lock ? query.forUpdate() : query);
  if (!row) throw notFound('automation');
  return toAutomation(row);
}

export async function getAutomationById(q: Q, id: string, lock = false): Promise<(Automation & { membersSeenId: string | null }) | null> {
  const query = q('automations').where({ id }).first();
  const row = await (lock ? query.forUpdate() : query);
  return row ? { ...toAutomation(row), membersSeenId: row.members_seen_id } : null;
}

export async function listAutomations(q: Q, workspaceId: string, limit: number, after?: { createdAt: string; id: string }) {
  const query = q('automations').where({ workspace_id: workspaceId });
  if (after) query.andWhereRaw('(created_at, id) > (?::timestamptz, ?::uuid)', [after.createdAt, after.id]);
  const rows = await query.orderBy([{ column: 'created_at' }, { column: 'id' }]).limit(limit + 1);
  return { rows: rows.slice(0, limit).map(toAutomation), more: rows.length > limit };
}

export async function updateAutomation(q: Q, id: string, patch: PatchAutomation, now: Date) {
  const set: Record<string, unknown> = { updated_at: now };
  if (patch.name !== undefined) set.name = patch.name;
  if (patch.enabled !== undefined) set.enabled = patch.enabled;
  if (patch.schedule !== undefined) set.schedule = patch.schedule;
  if (patch.exitWhen !== undefined) set.exit_when = patch.exitWhen === null ? null : JSON.stringify(patch.exitWhen);
  if (patch.reentryAfterDays !== undefined) set.reentry_after_days = patch.reentryAfterDays;
  const [row] = await q('automations').where({ id }).update(set).returning('*');
  return toAutomation(row);
}

export async function deleteAutomation(q: Q, id: string) {
  await q('automations').where({ id }).del();
}

/**
 * Stops an automation's pending work: active walks end as 'cancelled' and its queued, not yet
 * claimed messages become 'cancelled'. A message already claimed by dispatch ('sending') is
 * past the point of recall.
 */
export async function cancelPending(q: Q, automationId: string, reason: string, now: Date) {
  const enrollments = await q('automation_enrollments')
    .where({ automation_id: automationId, state: 'active' })
    .update({ state: 'cancelled', exit_reason: reason, finished_at: now, next_step_at: null, updated_at: now });
  const messages = await q('messages').where({ automation_id: automationId, status: 'queued' }).update({ status: 'cancelled' });
  return { enrollments, messages };
}

/** Enrollment states per step index, and message outcomes per step index, for GET /:id. */
export async function stepFigures(q: Q, automationId: string) {
  const [enrollments, messages] = await Promise.all([
    q('automation_enrollments')
      .where({ automation_id: automationId })
      .groupBy('state', 'step_index')
      .select('state', 'step_index', q.raw('count(*)::int AS n')),
    q('messages')
      .where({ automation_id: automationId })
      .groupBy('step_index', 'status')
      .select('step_index', 'status', q.raw('count(*)::int AS n')),
  ]);
  return {
    enrollments: enrollments as Array<{ state: string; step_index: number; n: number }>,
    messages: messages as Array<{ step_index: number; status: string; n: number }>,
  };
}

/** Every enabled segment-entry automation with its workspace's time zone, to register schedules at boot. */
export async function enabledSchedules(q: Q) {
  return q('automations as a')
    .join('workspaces as w', 'w.id', 'a.workspace_id')
    .where({ 'a.enabled': true, 'a.trigger_type': 'segmentEntry' })
    .select('a.id', 'a.schedule', 'w.timezone') as Promise<Array<{ id: string; schedule: string | null; timezone: string }>>;
}

export async function workspaceTimezone(q: Q, workspaceId: string): Promise<string> {
  const row = await q('workspaces').where({ id: workspaceId }).first('timezone');
  return row?.timezone ?? 'UTC';
}

export async function segmentExists(q: Q, workspaceId: string, segmentId: string): Promise<boolean> {
  return !!(await q('segments').where({ workspace_id: workspaceId, id: segmentId }).first('id'));
}

/** The oldest template of this name and channel in the workspace (starter templates are found by name). */
export async function templateByName(q: Q, workspaceId: string, name: string, channel: string) {
  return q('templates').where({ workspace_id: workspaceId, name, channel }).orderBy('created_at').first();
}

export async function segmentDefinition(q: Q, segmentId: string): Promise<{ kind: string; definition: unknown } | undefined> {
  return q('segments').where({ id: segmentId }).first('kind', 'definition');
}
