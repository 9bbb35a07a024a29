import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { runAttribution } from '../src/results/attribution';

/**
 * Conversion attribution on a schedule: each run drains the purchases feed past its cursor,
 * set-based, in the feed's transactions (a crash replays a batch, and replays are no-ops).
 */
export async function startResultsWorker(deps: Deps, options: { everyMs?: number } = {}): Promise<Worker> {
  const queue = deps.queues.get(QUEUE_NAMES.results);
  await queue.upsertJobScheduler('attribution', { every: options.everyMs ?? 60_000 }, { name: 'attribution' });
  return new Worker(
    QUEUE_NAMES.results,
    async (job) => {
      if (job.name !== 'attribution') return null;
      const r = await runAttribution(deps.db, deps.clock.now(), {});
      if (r.purchases) deps.logger.info(r, 'purchases attributed');
      return r;
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 1 },
  );
}
