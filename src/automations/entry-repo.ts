import type { Knex } from 'knex';
import { bindings } from '../db';

/**
 * The SQL of entering an automation. Everything runs in the caller's transaction and is
 * set-based: an evaluation that finds 50,000 new members is a few statements, not 50,000 round trips.
 */

/** Serialises evaluations of one segment: two at the same moment take turns; the second finds nothing new. */
export async function lockSegment(trx: Knex.Transaction, segmentId: string): Promise<void> {
  await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`hark:segment-membership:${segmentId}`]);
}

/**
 * Diffs the segment's current members (a compiled query selecting customer_id) with its open
 * memberships: new members get a membership entered now, leavers get exited_at = now. The members
 * go into a temporary table with a key and fresh statistics first: as a CTE the planner guessed
 * its size and chose a nested-loop anti-join (6,000 x 6,000 comparisons took 7 s).
 */
export async function diffMemberships(trx: Knex.Transaction, workspaceId: string, segmentId: string, members: Knex.QueryBuilder, now: Date) {
  await trx.raw('CREATE TEMPORARY TABLE IF NOT EXISTS hark_segment_now (customer_id bigint PRIMARY KEY) ON COMMIT DROP');
  await trx.raw('TRUNCATE hark_segment_now');
  await trx.raw('INSERT INTO hark_segment_now (customer_id) SELECT DISTINCT m.customer_id FROM ? AS m', bindings([members]));
  await trx.raw('ANALYZE hark_segment_now');
  const ins = await trx.raw(
    `INSERT INTO segment_memberships (workspace_id, segment_id, customer_id, entered_at)
     SELECT ?::uuid, ?::uuid, cur.customer_id, ?::timestamptz
     FROM hark_segment_now cur
     WHERE NOT EXISTS (SELECT 1 FROM segment_memberships m
                       WHERE m.segment_id = ?::uuid AND m.customer_id = cur.customer_id AND m.exited_at IS NULL)`,
    bindings([workspaceId, segmentId, now, segmentId]),
  );
  const gone = await trx.raw(
    `UPDATE segment_memberships m SET exited_at = ?::timestamptz
     WHERE m.segment_id = ?::uuid AND m.exited_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM hark_segment_now cur WHERE cur.customer_id = m.customer_id)`,
    bindings([now, segmentId]),
  );
  return { entered: ins.rowCount as number, exited: gone.rowCount as number };
}

/** The newest membership id of the segment: the automation has seen every entry up to it. */
export async function lastMembershipId(trx: Knex.Transaction, segmentId: string): Promise<string | null> {
  const row = await trx('segment_memberships').where({ segment_id: segmentId }).max('id as id').first();
  return (row?.id as string | null) ?? null;
}

// A customer may enter unless walking it now, or (reentryAfterDays null) ever entered, or entered
// within the last N days. `a` is the automation row.
const MAY_ENTER = `NOT EXISTS (
  SELECT 1 FROM automation_enrollments e
  WHERE e.automation_id = a.id AND e.workspace_id = a.workspace_id AND e.customer_id = cand.customer_id
    AND (e.state = 'active' OR a.reentry_after_days IS NULL
         OR e.entered_at > ?::timestamptz - make_interval(days => a.reentry_after_days)))`;

/**
 * Enrolls the segment's members whose open membership is newer than what this automation has
 * seen. ON CONFLICT covers the unique "one active walk" index should anything race past the lock.
 */
export async function enrollNewMembers(trx: Knex.Transaction, automationId: string, segmentId: string, seenId: string | null, now: Date) {
  const { rows } = await trx.raw(
    `INSERT INTO automation_enrollments (workspace_id, automation_id, customer_id, entered_at, step_index, next_step_at, state)
     SELECT a.workspace_id, a.id, cand.customer_id, ?, 0, ?, 'active'
     FROM automations a
     JOIN segment_memberships cand ON cand.segment_id = ? AND cand.id > ? AND cand.exited_at IS NULL
     WHERE a.id = ? AND ${MAY_ENTER}
     ON CONFLICT DO NOTHING
     RETURNING id`,
    bindings([now, now, segmentId, seenId ?? 0, automationId, now]),
  );
  return rows.length as number;
}

export interface FeedCandidate {
  automationId: string;
  customerId: string;
  ref: string;
}

/** Enrolls customers whose purchase or event fired an automation (one per automation and customer per batch). */
export async function enrollCandidates(trx: Knex.Transaction, list: FeedCandidate[], now: Date) {
  if (!list.length) return [] as Array<{ automation_id: string }>;
  const { rows } = await trx.raw(
    `INSERT INTO automation_enrollments (workspace_id, automation_id, customer_id, entered_at, step_index, next_step_at, state, trigger_ref)
     SELECT a.workspace_id, a.id, cand.customer_id, ?, 0, ?, 'active', cand.ref
     FROM unnest(?::uuid[], ?::bigint[], ?::bigint[]) AS cand(automation_id, customer_id, ref)
     JOIN automations a ON a.id = cand.automation_id AND a.enabled
     WHERE ${MAY_ENTER}
     ON CONFLICT DO NOTHING
     RETURNING automation_id`,
    bindings([now, now, list.map((c) => c.automationId), list.map((c) => c.customerId), list.map((c) => c.ref), now]),
  );
  return rows as Array<{ automation_id: string }>;
}

/** Enabled automations of these workspaces fired by purchases or events, existing since before `createdBefore`. */
export async function feedAutomations(trx: Knex.Transaction, type: 'purchase' | 'event', workspaceIds: string[]) {
  return trx('automations')
    .whereIn('workspace_id', workspaceIds)
    .where({ trigger_type: type, enabled: true })
    .select('id', 'workspace_id', 'event_type', 'created_at') as Promise<
    Array<{ id: string; workspace_id: string; event_type: string | null; created_at: Date }>
  >;
}

export async function markEvaluated(trx: Knex.Transaction, automationId: string, seenId: string | null, now: Date) {
  await trx('automations').where({ id: automationId }).update({ members_seen_id: seenId, last_evaluated_at: now });
}
