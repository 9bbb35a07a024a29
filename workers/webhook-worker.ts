import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { overdueDeliveries } from '../src/webhooks/repo';
import { attemptDelivery, fanOutEvents } from '../src/webhooks/service';

export interface WebhookWorkerOptions {
  /** First retry delay; each next one doubles (BullMQ exponential backoff). */
  baseDelayMs?: number;
  maxAttempts?: number;
  fanoutEveryMs?: number;
  timeoutMs?: number;
}

const DEFAULTS = { baseDelayMs: 30_000, maxAttempts: 8, fanoutEveryMs: 5_000, timeoutMs: 10_000 };

/**
 * Outgoing webhooks. A scheduled `fanout` job turns new message events into pending deliveries
 * (Postgres is the record) and enqueues one `deliver` job each, retried by BullMQ with exponential
 * backoff (30 s, 1 min, 2 min ... about 1 h over 8 attempts by default). Job data is the
 * delivery id only. A delivery whose job was lost (Redis restart) is found overdue and re-enqueued.
 */
export async function startWebhookWorker(deps: Deps, options: WebhookWorkerOptions = {}): Promise<Worker> {
  const o = { ...DEFAULTS, ...options };
  const queue = deps.queues.get(QUEUE_NAMES.webhooks);
  const jobOpts = { attempts: o.maxAttempts, backoff: { type: 'exponential' as const, delay: o.baseDelayMs }, removeOnComplete: true, removeOnFail: 1000 };
  const enqueue = (ids: string[]) => queue.addBulk(ids.map((deliveryId) => ({ name: 'deliver', data: { deliveryId }, opts: { ...jobOpts, jobId: `whd-${deliveryId}` } })));
  await queue.upsertJobScheduler('webhook-fanout', { every: o.fanoutEveryMs }, { name: 'fanout' });
  return new Worker(
    QUEUE_NAMES.webhooks,
    async (job) => {
      const now = deps.clock.now();
      if (job.name === 'fanout') {
        const created = await fanOutEvents(deps.db, now);
        // Overdue by far more than the longest backoff step: the job is gone, not waiting.
        const lost = await overdueDeliveries(deps.db, now, Math.max(10 * 60_000, o.baseDelayMs * 4), 500);
        await enqueue([...created, ...lost]);
        return { created: created.length, requeued: lost.length };
      }
      if (job.name === 'deliver') {
        const { deliveryId } = job.data as { deliveryId: string };
        const attempt = job.attemptsMade + 1;
        const result = await attemptDelivery(deps.db, deliveryId, now, { attempt, maxAttempts: o.maxAttempts, nextDelayMs: o.baseDelayMs * 2 ** (attempt - 1), timeoutMs: o.timeoutMs, allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE });
        // Throwing hands the retry (and its backoff) to BullMQ; the attempt is already recorded.
        if (result === 'retry') throw new Error(`webhook delivery ${deliveryId} attempt ${attempt} failed`);
        return { result };
      }
      return null;
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 10 },
  );
}
