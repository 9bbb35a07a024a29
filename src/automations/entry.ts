import type { Knex } from 'knex';
import type { Clock } from '../clock';
import type { Db } from '../db';
import { consumeFeed } from '../feed';
import { evaluatedTree, membersQuery } from '../segments/service';
import { withRetry } from '../tx';
import { getAutomationById, segmentDefinition } from './repo';
import {
  diffMemberships,
  enrollCandidates,
  enrollNewMembers,
  FeedCandidate,
  feedAutomations,
  lastMembershipId,
  lockSegment,
  markEvaluated,
} from './entry-repo';

export interface EntryDeps {
  db: Db;
  clock: Clock;
}

export interface Evaluation {
  entered: number;
  membersEntered: number;
  membersExited: number;
}

/**
 * A segmentEntry evaluation: records who entered and left the segment since the last evaluation
 * and enrolls the newly entered, in one transaction. The automation's row lock serialises runs of
 * the same automation (and a concurrent disable), the segment's advisory lock serialises every
 * automation over the same segment; the second of two simultaneous runs finds nothing new.
 */
export async function evaluateAutomation(deps: EntryDeps, automationId: string): Promise<Evaluation> {
  return withRetry(deps.db, async (trx) => {
    const a = await getAutomationById(trx, automationId, true);
    const none = { entered: 0, membersEntered: 0, membersExited: 0 };
    if (!a || !a.enabled || a.trigger.type !== 'segmentEntry' || !a.trigger.segmentId) return none;
    const segmentId = a.trigger.segmentId;
    const now = deps.clock.now();
    await lockSegment(trx, segmentId);
    // The segment's stored, self-contained tree. Not awaited: the builder is used as a subquery.
    const seg = await segmentDefinition(trx, segmentId);
    if (!seg) return none;
    const members = membersQuery(trx, a.workspaceId, evaluatedTree({ id: segmentId, ...seg }), now);
    const diff = await diffMemberships(trx, a.workspaceId, segmentId, members, now);
    const entered = await enrollNewMembers(trx, a.id, segmentId, a.membersSeenId, now);
    await markEvaluated(trx, a.id, await lastMembershipId(trx, segmentId), now);
    return { entered, membersEntered: diff.entered, membersExited: diff.exited };
  });
}

/**
 * Purchase and event triggers: one feed consumer per table for all automations. A new automation
 * sees only rows recorded after it was created, never the history.
 */
export async function consumeTriggerFeeds(deps: EntryDeps, opts: { limit?: number } = {}): Promise<Map<string, number>> {
  const entered = new Map<string, number>();
  for (const table of ['purchases', 'events'] as const) {
    for (;;) {
      const r = await consumeFeed(deps.db, `automations:${table}`, table, (trx, rows) => enrollFromFeed(trx, table, rows, deps.clock.now()), {
        now: deps.clock.now(),
        limit: opts.limit,
      });
      for (const row of r.result ?? []) entered.set(row.automation_id, (entered.get(row.automation_id) ?? 0) + 1);
      if (r.processed < (opts.limit ?? 5000)) break;
    }
  }
  return entered;
}

async function enrollFromFeed(trx: Knex.Transaction, table: 'purchases' | 'events', rows: Array<Record<string, any>>, now: Date) {
  const type = table === 'purchases' ? 'purchase' : 'event';
  const automations = await feedAutomations(trx, type, [...new Set(rows.map((r) => r.workspace_id as string))]);
  if (!automations.length) return [];
  const seen = new Set<string>();
  const list: FeedCandidate[] = [];
  for (const row of rows) {
    for (const a of automations) {
      if (a.workspace_id !== row.workspace_id || new Date(row.created_at) < new Date(a.created_at)) continue;
      if (type === 'event' && a.event_type !== row.type) continue;
      const key = `${a.id}:${row.customer_id}`;
      if (seen.has(key)) continue;
      seen.add(key);
      list.push({ automationId: a.id, customerId: String(row.customer_id), ref: String(row.id) });
    }
  }
  return enrollCandidates(trx, list, now);
}
