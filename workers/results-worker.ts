import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { runAttribution } from '../src/results/attribution';
import { ATTRIBUTION_JOB } from '../src/results/wake';

/**
 * Conversion attribution: each run drains the purchases feed past its cursor, set-based, in the
 * feed's transactions (a crash replays a batch, and replays are no-ops). Runs when the API wakes
 * it after purchases commit (src/results/wake.ts: one job a slot), and on a schedule as the
 * fallback for a lost wake-up; both are jobs of one name on one queue, one at a time.
 */
export async function startResultsWorker(deps: Deps, options: { everyMs?: number } = {}): Promise<Worker> {
  const queue = deps.queues.get(QUEUE_NAMES.results);
  await queue.upsertJobScheduler('attribution', { every: options.everyMs ?? 60_000 }, { name: ATTRIBUTION_JOB });
  return new Worker(
    QUEUE_NAMES.results,
    async (job) => {
      if (job.name !== ATTRIBUTION_JOB) return null;
      const r = await runAttribution(deps.db, deps.clock.now(), {});
      if (r.purchases) deps.logger.info(r, 'purchases attributed');
      return r;
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 1 },
  );
}
