import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { consumeTriggerFeeds, evaluateAutomation } from '../src/automations/entry';
import { registerTick, syncSchedules } from '../src/automations/schedule';
import { processDueEnrollments, WalkDeps } from '../src/automations/walker';
import { requestDispatch } from '../src/messages/dispatch';
import { QUEUE_NAMES } from '../src/queues';

export interface AutomationWorkerOptions {
  /** How often purchases/events are taken in for their triggers and due steps walked. */
  tickEveryMs?: number;
  concurrency?: number;
}

/**
 * Automation jobs carry an automation id at most:
 * - `evaluate` (one job scheduler per segmentEntry automation, cron from Postgres): records entries
 *   and walks the new entrants' first steps;
 * - `walk` (after POST /:id/run): walks due steps;
 * - `tick` (every few seconds): purchase/event triggers from the ingest feeds, and every due step
 *   (waits that ended). Schedules are re-registered from Postgres at boot.
 */
export async function startAutomationWorker(deps: Deps, opts: AutomationWorkerOptions = {}): Promise<Worker> {
  const walkDeps: WalkDeps = {
    db: deps.db,
    clock: deps.clock,
    logger: deps.logger,
    dispatch: (ids) => requestDispatch(deps.queues, ids),
  };
  const registered = await syncSchedules(deps.db, deps.queues);
  await registerTick(deps.queues, opts.tickEveryMs ?? 5000);
  deps.logger.info({ registered }, 'automation schedules registered');
  const worker = new Worker(
    QUEUE_NAMES.automations,
    async (job) => {
      const automationId = (job.data as { automationId?: string }).automationId;
      switch (job.name) {
        case 'evaluate': {
          const r = await evaluateAutomation(deps, automationId!);
          const walked = await processDueEnrollments(walkDeps, { automationId });
          if (r.entered) deps.logger.info({ automationId, ...r, queued: walked.queued }, 'automation evaluated');
          return { ...r, queued: walked.queued };
        }
        case 'walk':
          return processDueEnrollments(walkDeps, { automationId });
        case 'tick': {
          const entered = await consumeTriggerFeeds(deps);
          const walked = await processDueEnrollments(walkDeps);
          return { entered: [...entered.values()].reduce((a, b) => a + b, 0), ...walked };
        }
        default:
          return null;
      }
    },
    // An evaluation of a large segment holds its transaction for a while: a long lock.
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: opts.concurrency ?? 2, lockDuration: 300_000 },
  );
  worker.on('error', (err) => deps.logger.error({ err: err.message }, 'automation worker error'));
  return worker;
}
