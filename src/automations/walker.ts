import type { Knex } from 'knex';
import type { Clock } from '../clock';
import type { Db } from '../db';
import type { Logger } from '../logger';
import { AutomationMessageArgs, enqueueAutomationMessages } from '../messages/outbox';
import { matchingCustomerIds } from '../segments/service';
import type { SegmentNode } from '../segments/schema';
import { withRetry } from '../tx';
import type { Step } from './schema';
import { applyTransitions, automationsByIds, claimDue, DueEnrollment, failEnrollment, purchasedSinceEntry, Transitions } from './walk-repo';

export interface WalkDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  /** Hands queued message ids to dispatch after commit (dispatch's own sweep is the fallback). */
  dispatch?: (messageIds: string[]) => Promise<void>;
}

export interface WalkResult {
  steps: number;
  queued: number;
  skipped: number;
  exited: number;
  completed: number;
  failed: number;
}

interface BatchResult extends WalkResult {
  claimed: number;
  queuedIds: string[];
}

const HOUR = 3600_000;

/**
 * Walks every due enrollment one step per pass, until none is due. Each batch is one transaction:
 * the exit check, the message written to the outbox and the step advanced commit together, so a
 * crash replays the batch and the outbox's unique (enrollment_id, step_index) makes the replay
 * find the message already there instead of writing a second one. A send advances to the next
 * step due "now", so consecutive sends go out in consecutive passes, each behind its own exit check.
 */
export async function processDueEnrollments(deps: WalkDeps, opts: { automationId?: string; batchSize?: number } = {}): Promise<WalkResult> {
  const limit = opts.batchSize ?? 500;
  const total: WalkResult = { steps: 0, queued: 0, skipped: 0, exited: 0, completed: 0, failed: 0 };
  for (let pass = 0; pass < 100_000; pass++) {
    let r: BatchResult;
    try {
      r = await withRetry(deps.db, (trx) => walkBatch(trx, deps.clock.now(), limit, opts.automationId));
    } catch (err) {
      // One enrollment whose step cannot be carried out must not hold back the rest: walk this
      // batch one enrollment per transaction, and end the ones that still fail.
      deps.logger.warn({ err: (err as Error).message }, 'automation batch failed; retrying one by one');
      r = await walkOneByOne(deps, limit, opts.automationId);
    }
    for (const k of Object.keys(total) as Array<keyof WalkResult>) total[k] += r[k];
    if (r.queuedIds.length && deps.dispatch) {
      await deps.dispatch(r.queuedIds).catch((err) => deps.logger.warn({ err: (err as Error).message }, 'dispatch request failed; the sweep will send'));
    }
    if (r.claimed === 0) break;
  }
  return total;
}

async function walkOneByOne(deps: WalkDeps, limit: number, automationId?: string): Promise<BatchResult> {
  const now = deps.clock.now();
  const q = deps.db('automation_enrollments').where('state', 'active').andWhere('next_step_at', '<=', now).orderBy('next_step_at').limit(limit).pluck('id');
  if (automationId) q.andWhere('automation_id', automationId);
  const ids = (await q) as string[];
  const out: BatchResult = { steps: 0, queued: 0, skipped: 0, exited: 0, completed: 0, failed: 0, claimed: ids.length, queuedIds: [] };
  for (const id of ids) {
    try {
      const r = await withRetry(deps.db, (trx) => walkBatch(trx, deps.clock.now(), 1, automationId, id));
      for (const k of Object.keys(r) as Array<keyof BatchResult>) if (k !== 'queuedIds') (out[k] as number) += r[k] as number;
      out.queuedIds.push(...r.queuedIds);
    } catch (err) {
      deps.logger.error({ enrollmentId: id, err: (err as Error).message }, 'automation step failed; enrollment ended');
      await deps.db.transaction((trx) => failEnrollment(trx, id, deps.clock.now()));
      out.failed++;
    }
  }
  out.claimed = ids.length;
  return out;
}

export async function walkBatch(trx: Knex.Transaction, now: Date, limit: number, automationId?: string, onlyId?: string): Promise<BatchResult> {
  const rows = await claimDue(trx, now, limit, { automationId, enrollmentId: onlyId });
  const out: BatchResult = { steps: 0, queued: 0, skipped: 0, exited: 0, completed: 0, failed: 0, claimed: rows.length, queuedIds: [] };
  if (!rows.length) return out;
  const automations = await automationsByIds(trx, [...new Set(rows.map((r) => r.automation_id))]);
  const exits = await exitsDue(trx, rows, automations, now);
  const t: Transitions = { exited: [], completed: [], advanced: [] };
  const sends: AutomationMessageArgs[] = [];
  const sendingTo = new Set<string>();
  for (const e of rows) {
    const a = automations.get(e.automation_id)!;
    const steps = a.steps as Step[];
    const reason = exits.get(String(e.id));
    if (reason) {
      t.exited.push({ id: e.id, reason });
      out.exited++;
      continue;
    }
    const step = steps[e.step_index];
    if (!step) {
      t.completed.push(e.id);
      out.completed++;
      continue;
    }
    if (step.type === 'wait') {
      out.steps++;
      t.advanced.push({ id: e.id, stepIndex: e.step_index + 1, nextAt: new Date(now.getTime() + step.hours * HOUR) });
      continue;
    }
    // Two sends to one customer in one batch would pass the frequency cap together (it counts what
    // is already in the outbox): the second waits for the next pass.
    if (sendingTo.has(String(e.customer_id))) continue;
    sendingTo.add(String(e.customer_id));
    out.steps++;
    sends.push({
      workspaceId: e.workspace_id,
      automationId: e.automation_id,
      enrollmentId: String(e.id),
      stepIndex: e.step_index,
      customerId: String(e.customer_id),
      channel: step.channel,
      templateId: step.templateId,
      now,
    });
    t.advanced.push({ id: e.id, stepIndex: e.step_index + 1, nextAt: now });
  }
  for (const m of await enqueueAutomationMessages(trx, sends)) {
    if (m.status === 'queued') {
      out.queued++;
      out.queuedIds.push(m.messageId);
    } else out.skipped++;
  }
  await applyTransitions(trx, t, now);
  return out;
}

/** exitWhen, checked before every step: enrollment id -> reason, for those that must leave. */
async function exitsDue(trx: Knex.Transaction, rows: DueEnrollment[], automations: Map<string, Record<string, any>>, now: Date) {
  const out = new Map<string, string>();
  const byPurchase = rows.filter((r) => automations.get(r.automation_id)!.exit_when === 'purchased');
  for (const id of await purchasedSinceEntry(trx, byPurchase.map((r) => String(r.id)))) out.set(id, 'purchased');
  const byNode = new Map<string, DueEnrollment[]>();
  for (const r of rows) {
    const w = automations.get(r.automation_id)!.exit_when;
    if (w && typeof w === 'object') byNode.set(r.automation_id, [...(byNode.get(r.automation_id) ?? []), r]);
  }
  for (const [automationId, list] of byNode) {
    const a = automations.get(automationId)!;
    const matched = await matchingCustomerIds(trx, a.workspace_id, a.exit_when as SegmentNode, list.map((r) => String(r.customer_id)), now);
    for (const r of list) if (matched.has(String(r.customer_id))) out.set(String(r.id), 'exit_segment');
  }
  return out;
}
