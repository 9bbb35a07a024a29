import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** Every queue hark uses. Job data is ids only: BullMQ stores it in clear text in Redis. */
export const QUEUE_NAMES = {
  maintenance: 'hark-maintenance',
  campaigns: 'hark-campaigns',
  dispatch: 'hark-dispatch',
  predictions: 'hark-predictions',
  automations: 'hark-automations',
  results: 'hark-results',
  webhooks: 'hark-webhooks',
  connectors: 'hark-connectors',
  imports: 'hark-imports',
} as const;

export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

export class Queues {
  private readonly queues = new Map<string, Queue>();
  constructor(
    private readonly connection: Redis,
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
