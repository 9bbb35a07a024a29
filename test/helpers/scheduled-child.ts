/**
 * A worker process with every scheduled worker (automation tick, attribution, webhook fan-out,
 * nightly fits, stats roll) and the dispatch and campaign workers, on short intervals, configured
 * from the environment like `ROLE=worker`. Prints "ready" once all run. For test/many-workers.test.ts.
 */
import { systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createDb } from '../../src/db';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/ops/metrics';
import { Queues } from '../../src/queues';
import { createRedis } from '../../src/redis';
import { startAutomationWorker } from '../../workers/automation-worker';
import { startCampaignWorker } from '../../workers/campaign-worker';
import { startDispatchWorker } from '../../workers/dispatch-worker';
import { startMaintenanceWorker } from '../../workers/maintenance-worker';
import { startPredictionsWorker } from '../../workers/predictions-worker';
import { startResultsWorker } from '../../workers/results-worker';
import { startWebhookWorker } from '../../workers/webhook-worker';

/** The scheduled ticks of the test, in ms. */
export const TICK_MS = 500;

async function main() {
  const config = loadConfig();
  const redis = createRedis(config.REDIS_URL);
  redis.on('error', () => undefined);
  const deps = { config, db: createDb(config.DATABASE_URL, 5), redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() };
  const workers = [
    await startAutomationWorker(deps, { tickEveryMs: TICK_MS }),
    await startResultsWorker(deps, { everyMs: TICK_MS }),
    await startWebhookWorker(deps, { fanoutEveryMs: TICK_MS }),
    await startPredictionsWorker(deps),
    await startMaintenanceWorker(deps),
    await startDispatchWorker(deps, { parallel: 4, sweepEveryMs: 300, sweep: { deadAfterMs: 2000, requestLeaseMs: 5000, idleLeaseMs: 2000 } }),
    await startCampaignWorker(deps, { tickEveryMs: 300 }),
  ];
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    void Promise.allSettled(workers.map((w) => w.close())).then(() => process.exit(0));
  });
}

if (require.main === module) main().catch((err) => {
  process.stderr.write(`scheduled child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
