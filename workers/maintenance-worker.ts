import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { maintainMessageEventPartitions, maintainMessagePartitions } from '../src/messages/partitions';
import { rollRecentStats } from '../src/stats/roll';

/**
 * Housekeeping on a schedule: re-basing rolling stats, and the monthly partitions of messages and
 * message_events (three months ahead, old ones dropped past MESSAGES_RETENTION_MONTHS and
 * MESSAGE_EVENTS_RETENTION_MONTHS). Jobs carry no data;
 * each scheduler has a fixed id, so one job per tick runs across all workers.
 */
export async function startMaintenanceWorker(deps: Deps): Promise<Worker> {
  const queue = deps.queues.get(QUEUE_NAMES.maintenance);
  await queue.upsertJobScheduler('stats-roll', { pattern: '7 * * * *' }, { name: 'stats-roll' });
  await queue.upsertJobScheduler('message-partitions', { pattern: '37 * * * *' }, { name: 'message-partitions' });
  return new Worker(
    QUEUE_NAMES.maintenance,
    async (job) => {
      if (job.name === 'stats-roll') {
        const changed = await rollRecentStats(deps.db, deps.clock.now());
        deps.logger.info({ changed }, 'rolling stats re-based');
      } else if (job.name === 'message-partitions') {
        const messages = await maintainMessagePartitions(deps.db, deps.clock.now(), { aheadMonths: 3, retentionMonths: deps.config.MESSAGES_RETENTION_MONTHS });
        if (messages.created.length || messages.dropped.length || messages.pending) deps.logger.info(messages, 'messages partitions maintained');
        const changes = await maintainMessageEventPartitions(deps.db, deps.clock.now(), { aheadMonths: 3, retentionMonths: deps.config.MESSAGE_EVENTS_RETENTION_MONTHS });
        if (changes.created.length || changes.dropped.length) deps.logger.info(changes, 'message_events partitions maintained');
      }
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 1 },
  );
}
