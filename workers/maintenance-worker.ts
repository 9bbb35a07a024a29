import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { rollRecentStats } from '../src/stats/roll';

/** Housekeeping on a schedule: re-basing rolling stats. Jobs carry no data. */
export async function startMaintenanceWorker(deps: Deps): Promise<Worker> {
  const queue = deps.queues.get(QUEUE_NAMES.maintenance);
  await queue.upsertJobScheduler('stats-roll', { pattern: '7 * * * *' }, { name: 'stats-roll' });
  return new Worker(
    QUEUE_NAMES.maintenance,
    async (job) => {
      if (job.name === 'stats-roll') {
        const changed = await rollRecentStats(deps.db, deps.clock.now());
        deps.logger.info({ changed }, 'rolling stats re-based');
      }
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 1 },
  );
}
