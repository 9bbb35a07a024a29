import type { Knex } from 'knex';
import type { Clock } from '../clock';
import type { Db } from '../db';
import { AppError, notFound } from '../errors';
import type { Queues } from '../queues';
import { validateDefinition } from '../segments/service';
import { loadTemplate } from '../templates/render';
import { withRetry } from '../tx';
import { stepCounts } from './counts';
import * as repo from './repo';
import { consumeTriggerFeeds, evaluateAutomation } from './entry';
import { checkCron, registerSchedule, removeSchedule, requestWalk } from './schedule';
import { Automation, CreateAutomation, DEFAULT_SCHEDULE, MAX_WAIT_HOURS, PatchAutomation } from './schema';

export interface ServiceDeps {
  db: Db;
  clock: Clock;
  queues: Queues;
}

/**
 * Everything a stored automation refers to is checked before anything is written: the segment
 * (404 if not this workspace's), the templates (404 if not this workspace's, 422 if of the wrong
 * channel), the exitWhen node (422 naming the path) and the cron (422). One bad part stores nothing.
 */
async function checkReferences(trx: Knex.Transaction, workspaceId: string, a: Partial<CreateAutomation>, timezone: string) {
  if (a.trigger?.type === 'segmentEntry' && !(await repo.segmentExists(trx, workspaceId, a.trigger.segmentId))) throw notFound('segment');
  if (a.schedule !== undefined) {
    if (a.trigger && a.trigger.type !== 'segmentEntry') {
      throw new AppError('unprocessable', 'schedule applies to segmentEntry triggers only', [{ path: 'schedule', message: 'only for segmentEntry triggers' }]);
    }
    checkCron(a.schedule, timezone);
  }
  for (const [i, step] of (a.steps ?? []).entries()) {
    if (step.type === 'wait') {
      if (!Number.isFinite(step.hours) || step.hours < 0 || step.hours > MAX_WAIT_HOURS) {
        const message = `a wait is 0 to ${MAX_WAIT_HOURS} hours (one year)`;
        throw new AppError('unprocessable', `steps.${i}.hours: ${message}`, [{ path: `steps.${i}.hours`, message }]);
      }
      continue;
    }
    const template = await loadTemplate(trx, workspaceId, step.templateId);
    if (template.channel !== step.channel) {
      const message = `template is a ${template.channel} template, the step sends ${step.channel}`;
      throw new AppError('unprocessable', `steps.${i}.templateId: ${message}`, [{ path: `steps.${i}.templateId`, message }]);
    }
  }
  // The segment service returns the tree with segment references inlined: that is what is stored
  // and checked before every step (a later change to a referenced segment does not reach it).
  if (a.exitWhen && typeof a.exitWhen === 'object') return (await validateDefinition(trx, workspaceId, a.exitWhen, 'exitWhen')) as Record<string, unknown>;
  return a.exitWhen;
}

export async function createAutomation(deps: ServiceDeps, workspaceId: string, input: CreateAutomation): Promise<Automation> {
  return deps.db.transaction(async (trx) => {
    const timezone = await repo.workspaceTimezone(trx, workspaceId);
    const exitWhen = await checkReferences(trx, workspaceId, input, timezone);
    // The effective schedule is stored, so GET shows what runs (hourly unless told otherwise).
    const schedule = input.trigger.type === 'segmentEntry' ? (input.schedule ?? DEFAULT_SCHEDULE) : null;
    const a = await repo.insertAutomation(trx, workspaceId, { ...input, schedule, exitWhen }, deps.clock.now());
    // Registered before commit: if Redis is down the automation is not stored (503). A commit that
    // fails after this leaves a scheduler for a missing automation, which evaluates nothing and
    // is removed at the next boot.
    if (a.enabled && a.trigger.type === 'segmentEntry') await registerSchedule(deps.queues, { id: a.id, schedule: a.schedule, timezone });
    return a;
  });
}

/**
 * Disabling stops entries and pending sends at once: active walks are cancelled and their
 * queued, unsent messages too. Re-enabling starts from there: cancelled walks are not resumed
 * and nothing already sent is sent again.
 */
export async function patchAutomation(deps: ServiceDeps, workspaceId: string, id: string, patch: PatchAutomation): Promise<Automation> {
  return withRetry(deps.db, async (trx) => {
    const current = await repo.getAutomation(trx, workspaceId, id, true);
    const timezone = await repo.workspaceTimezone(trx, workspaceId);
    const exitWhen = await checkReferences(trx, workspaceId, { ...patch, ...(patch.schedule !== undefined ? { trigger: current.trigger as CreateAutomation['trigger'] } : {}) } as Partial<CreateAutomation>, timezone);
    const now = deps.clock.now();
    const a = await repo.updateAutomation(trx, id, { ...patch, ...(patch.exitWhen !== undefined ? { exitWhen } : {}) }, now);
    if (current.enabled && !a.enabled) await repo.cancelPending(trx, id, 'disabled', now);
    if (a.trigger.type === 'segmentEntry') {
      if (a.enabled) await registerSchedule(deps.queues, { id, schedule: a.schedule, timezone });
      else await removeSchedule(deps.queues, id);
    }
    return a;
  });
}

export async function deleteAutomation(deps: ServiceDeps, workspaceId: string, id: string): Promise<void> {
  await withRetry(deps.db, async (trx) => {
    await repo.getAutomation(trx, workspaceId, id, true);
    await repo.cancelPending(trx, id, 'deleted', deps.clock.now());
    await repo.deleteAutomation(trx, id);
    await removeSchedule(deps.queues, id);
  });
}

export async function getAutomationWithCounts(deps: ServiceDeps, workspaceId: string, id: string) {
  const a = await repo.getAutomation(deps.db, workspaceId, id);
  return { ...a, counts: stepCounts(a, await repo.stepFigures(deps.db, id)) };
}

/**
 * POST /:id/run: evaluates now. A segmentEntry automation evaluates its segment; purchase and
 * event automations take in what the ingest feeds hold so far. The first steps are walked by
 * the automation worker (a 'walk' job), so a large entry does not hold the HTTP request.
 */
export async function runAutomation(deps: ServiceDeps, workspaceId: string, id: string): Promise<{ entered: number }> {
  const a = await repo.getAutomation(deps.db, workspaceId, id);
  if (!a.enabled) throw new AppError('conflict', 'automation is disabled; enable it to run it');
  let entered: number;
  if (a.trigger.type === 'segmentEntry') entered = (await evaluateAutomation(deps, id)).entered;
  else entered = (await consumeTriggerFeeds(deps)).get(id) ?? 0;
  await requestWalk(deps.queues, id);
  return { entered };
}
