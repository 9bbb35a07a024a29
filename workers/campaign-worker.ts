import type { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { ClosableWorker } from './closable-worker';
import * as service from '../src/campaigns/service';
import { QUEUE_NAMES } from '../src/queues';

/**
 * Campaign jobs (ids only): 'start' (a scheduled time came) and 'fanout'. Beside BullMQ, a timer
 * runs the campaign tick from Postgres, so schedules and fan-outs survive a Redis restart, and
 * boot re-arms every scheduled campaign.
 */
export async function startCampaignWorker(deps: Deps, opts: { tickEveryMs?: number } = {}): Promise<Worker> {
  await service.rearmAll(deps).catch((err) => deps.logger.error({ err: (err as Error).message }, 'campaign re-arm failed'));
  const worker = new ClosableWorker(
    QUEUE_NAMES.campaigns,
    async (job) => {
      const id = String((job.data as { id: string }).id);
      if (job.name === 'start') await service.startIfDue(deps, id);
      else if (job.name === 'fanout') await service.runFanout(deps, id);
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 2 },
  );
  worker.on('error', (err) => deps.logger.error({ err: err.message }, 'campaign worker error'));
  let ticking = false;
  let ticks = 0;
  const timer = setInterval(() => {
    if (ticking) return;
    ticking = true;
    // Unfinished fan-outs are resumed from the tick only when no job is likely running them:
    // at the first tick after boot, and then every tenth tick (a lost job after a Redis restart).
    const resume = ticks++ % 10 === 0;
    service
      .tick(deps, { resumeFanouts: resume })
      .catch((err) => deps.logger.error({ err: (err as Error).message }, 'campaign tick failed'))
      .finally(() => (ticking = false));
  }, opts.tickEveryMs ?? 1000);
  worker.cleanup = async () => {
    clearInterval(timer);
    while (ticking) await new Promise((r) => setTimeout(r, 20));
  };
  return worker;
}
