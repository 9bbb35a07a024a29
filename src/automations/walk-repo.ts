import type { Knex } from 'knex';
import { bindings } from '../db';

/** The SQL of walking enrollments through their steps; all in the caller's transaction. */

export interface DueEnrollment {
  id: string;
  workspace_id: string;
  automation_id: string;
  customer_id: string;
  entered_at: Date;
  step_index: number;
}

/**
 * Claims up to `limit` active enrollments whose next step is due. SKIP LOCKED lets several
 * workers sweep side by side without waiting on (or double-processing) each other's rows.
 */
export async function claimDue(
  trx: Knex.Transaction,
  now: Date,
  limit: number,
  only: { automationId?: string; enrollmentId?: string } = {},
): Promise<DueEnrollment[]> {
  const q = trx('automation_enrollments as e')
    .join('automations as a', (j) => j.on('a.id', 'e.automation_id').andOn('a.workspace_id', 'e.workspace_id'))
    .where('e.state', 'active')
    .andWhere('e.next_step_at', '<=', now)
    .andWhere('a.enabled', true)
    .orderBy([{ column: 'e.next_step_at' }, { column: 'e.id' }])
    .limit(limit)
    .forUpdate('e')
    .skipLocked()
    .select('e.id', 'e.workspace_id', 'e.automation_id', 'e.customer_id', 'e.entered_at', 'e.step_index');
  if (only.automationId) q.andWhere('e.automation_id', only.automationId);
  if (only.enrollmentId) q.andWhere('e.id', only.enrollmentId);
  return q;
}

export async function automationsByIds(trx: Knex.Transaction, ids: string[]) {
  const rows = await trx('automations').whereIn('id', ids).select('id', 'workspace_id', 'trigger_type', 'steps', 'exit_when');
  return new Map(rows.map((r) => [r.id as string, r]));
}

/**
 * Enrollments (of these) whose customer bought since entering. A purchase counts when it happened
 * or was recorded after entry (a late point-of-sale upload still counts); for purchase-triggered
 * automations the purchase that fired the entry does not.
 */
export async function purchasedSinceEntry(trx: Knex.Transaction, enrollmentIds: string[]): Promise<Set<string>> {
  if (!enrollmentIds.length) return new Set();
  const { rows } = await trx.raw(
    `SELECT e.id FROM automation_enrollments e
     JOIN automations a ON a.id = e.automation_id AND a.workspace_id = e.workspace_id
     WHERE e.id = ANY(?::bigint[])
       AND EXISTS (SELECT 1 FROM purchases p
                   WHERE p.customer_id = e.customer_id AND p.workspace_id = e.workspace_id
                     AND (p.occurred_at > e.entered_at OR p.created_at > e.entered_at)
                     AND NOT (a.trigger_type = 'purchase' AND p.id = e.trigger_ref))`,
    bindings([enrollmentIds]),
  );
  return new Set((rows as Array<{ id: string }>).map((r) => String(r.id)));
}

export interface Transitions {
  exited: Array<{ id: string; reason: string }>;
  completed: string[];
  advanced: Array<{ id: string; stepIndex: number; nextAt: Date }>;
}

/** Applies a batch's outcomes in three statements; an exit also withdraws the walk's queued messages. */
export async function applyTransitions(trx: Knex.Transaction, t: Transitions, now: Date): Promise<void> {
  if (t.exited.length) {
    await trx.raw(
      `UPDATE automation_enrollments e SET state = 'exited', exit_reason = x.reason, finished_at = ?, next_step_at = NULL, updated_at = ?
       FROM unnest(?::bigint[], ?::text[]) AS x(id, reason) WHERE e.id = x.id`,
      bindings([now, now, t.exited.map((x) => x.id), t.exited.map((x) => x.reason)]),
    );
    await trx.raw(`UPDATE messages SET status = 'cancelled' WHERE enrollment_id = ANY(?::bigint[]) AND status = 'queued'`, bindings([t.exited.map((x) => x.id)]));
  }
  if (t.completed.length) {
    await trx.raw(
      `UPDATE automation_enrollments SET state = 'completed', finished_at = ?, next_step_at = NULL, updated_at = ? WHERE id = ANY(?::bigint[])`,
      bindings([now, now, t.completed]),
    );
  }
  if (t.advanced.length) {
    await trx.raw(
      `UPDATE automation_enrollments e SET step_index = x.step_index, next_step_at = x.next_at, updated_at = ?
       FROM unnest(?::bigint[], ?::int[], ?::timestamptz[]) AS x(id, step_index, next_at) WHERE e.id = x.id`,
      bindings([now, t.advanced.map((x) => x.id), t.advanced.map((x) => x.stepIndex), t.advanced.map((x) => x.nextAt)]),
    );
  }
}

/** Marks one enrollment as failed (exited, reason 'error') when its step cannot be carried out at all. */
export async function failEnrollment(trx: Knex.Transaction, id: string, now: Date): Promise<void> {
  await trx('automation_enrollments')
    .where({ id, state: 'active' })
    .update({ state: 'exited', exit_reason: 'error', finished_at: now, next_step_at: null, updated_at: now });
}
