import { Queue } from 'bullmq';
import type { RedisClient } from './redis';

/**
 * Every queue hark uses. Job data is ids only: BullMQ stores it in clear text in Redis.
 * Each name is its own Redis Cluster hash tag ({...}): BullMQ's scripts touch several keys of one
 * queue at once, so all of a queue's keys must hash to one slot, and distinct tags spread the
 * queues over the cluster's masters (BullMQ's Redis Cluster guide). On a single Redis the braces
 * are just characters of the key names.
 */
export const QUEUE_NAMES = {
  maintenance: '{hark-maintenance}',
  campaigns: '{hark-campaigns}',
  dispatch: '{hark-dispatch}',
  predictions: '{hark-predictions}',
  automations: '{hark-automations}',
  results: '{hark-results}',
  webhooks: '{hark-webhooks}',
  connectors: '{hark-connectors}',
  imports: '{hark-imports}',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

export class Queues {
  private readonly queues = new Map<string, Queue>();
  constructor(
    private readonly connection: RedisClient,
    readonly prefix = 'hark',
  ) {}

  get(name: QueueName | string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection, prefix: this.prefix });
      this.queues.set(name, q);
    }
    return q;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
