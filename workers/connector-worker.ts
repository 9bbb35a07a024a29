import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { deliveryMapper, giveUp } from '../src/connectors/apply';
import { MAP_JOB } from '../src/connectors/service';

export interface ConnectorWorkerOptions {
  concurrency?: number;
  /** First retry delay; each next one doubles. */
  retryDelayMs?: number;
}

/**
 * Maps stored connector deliveries (job data: the delivery id only) to purchases, refunds and
 * customers. Many jobs run at once so that their purchases share the group committer's statements;
 * a failure a retry may cure (database down) is retried with backoff, and after the last attempt
 * the delivery is recorded as failed with the reason.
 */
export async function startConnectorWorker(deps: Deps, options: ConnectorWorkerOptions = {}): Promise<Worker> {
  const map = deliveryMapper(deps.db, deps.clock);
  const worker = new Worker(
    QUEUE_NAMES.connectors,
    async (job) => {
      const { deliveryId } = job.data as { deliveryId: string };
      try {
        return { outcome: await map(deliveryId) };
      } catch (err) {
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? MAP_JOB.attempts)) await giveUp(deps.db, deliveryId, job.attemptsMade + 1, err, deps.clock.now());
        throw err;
      }
    },
    {
      connection: deps.redis.duplicate(),
      prefix: deps.queues.prefix,
      concurrency: options.concurrency ?? 64,
      settings: { backoffStrategy: (attemptsMade: number) => (options.retryDelayMs ?? 2_000) * 2 ** (attemptsMade - 1) },
    },
  );
  worker.on('failed', (job, err) => deps.logger.warn({ deliveryId: job?.data?.deliveryId, attempt: job?.attemptsMade, err: err.message }, 'connector delivery mapping failed'));
  return worker;
}
