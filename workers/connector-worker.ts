import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { deliveryMapper, giveUp } from '../src/connectors/apply';
import { attributionWaker } from '../src/results/wake';
import { MAP_JOB } from '../src/connectors/service';

export interface ConnectorWorkerOptions {
  concurrency?: number;
  /** First retry delay; each next one doubles. */
  retryDelayMs?: number;
}

/**
 * Maps stored connector deliveries (job data: the ids of deliveries that arrived together) to
 * purchases, refunds and customers. Many jobs run at once so that their purchases share the group committer's statements;
 * a failure a retry may cure (database down) is retried with backoff, and after the last attempt
 * the delivery is recorded as failed with the reason.
 */
export async function startConnectorWorker(deps: Deps, options: ConnectorWorkerOptions = {}): Promise<Worker> {
  const map = deliveryMapper(deps.db, deps.clock, attributionWaker(deps.queues, { everyMs: deps.config.ATTRIBUTION_WAKE_MS, logger: deps.logger }));
  const worker = new Worker(
    QUEUE_NAMES.connectors,
    async (job) => {
      const ids = (job.data as { deliveryIds: string[] }).deliveryIds;
      // Each delivery of the group is mapped on its own (their purchases share statements); a finished
      // one is skipped when the job is retried, so only what failed is tried again.
      const settled = await Promise.allSettled(ids.map((id) => map(id)));
      const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [{ id: ids[i]!, err: r.reason as unknown }] : []));
      if (!failed.length) return { mapped: ids.length };
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? MAP_JOB.attempts)) {
        for (const f of failed) await giveUp(deps.db, f.id, job.attemptsMade + 1, f.err, deps.clock.now());
      }
      throw failed[0]!.err;
    },
    {
      connection: deps.redis.duplicate(),
      prefix: deps.queues.prefix,
      concurrency: options.concurrency ?? 64,
      settings: { backoffStrategy: (attemptsMade: number) => (options.retryDelayMs ?? 2_000) * 2 ** (attemptsMade - 1) },
    },
  );
  worker.on('failed', (job, err) => deps.logger.warn({ deliveryIds: job?.data?.deliveryIds, attempt: job?.attemptsMade, err: err.message }, 'connector delivery mapping failed'));
  return worker;
}
