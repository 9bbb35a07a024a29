/**
 * A worker process for the crash tests: only the dispatch and campaign workers, configured from
 * the environment like `ROLE=worker`, with short sweeper leases so a killed sibling's rows are
 * found quickly. Prints "ready" once both workers run.
 */
import { systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createDb } from '../../src/db';
import { resolveSecrets } from '../../src/secrets';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/ops/metrics';
import { Queues } from '../../src/queues';
import { createRedis } from '../../src/redis';
import { startCampaignWorker } from '../../workers/campaign-worker';
import { startDispatchWorker } from '../../workers/dispatch-worker';

/** Few lanes, so that the rows a kill can leave 'unknown' (atRiskPerJob) stay well under the campaign's size. */
export const CRASH_TEST_PARALLEL = 4;

async function main() {
  const db = createDb(loadConfig().DATABASE_URL, 5);
  const config = await resolveSecrets(loadConfig(), db);
  const redis = createRedis(config.REDIS_URL);
  redis.on('error', () => undefined);
  const deps = { config, db, redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() };
  const workers = [
    await startDispatchWorker(deps, { parallel: CRASH_TEST_PARALLEL, sweepEveryMs: 300, sweep: { deadAfterMs: 2000, requestLeaseMs: 5000, idleLeaseMs: 2000 } }),
    await startCampaignWorker(deps, { tickEveryMs: 300 }),
  ];
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    void Promise.allSettled(workers.map((w) => w.close())).then(() => process.exit(0));
  });
}

if (require.main === module) main().catch((err) => {
  process.stderr.write(`dispatch child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
