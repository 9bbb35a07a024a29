/**
 * An import worker process for the crash test, configured from the environment like
 * `ROLE=worker`, with a short lock so that a killed sibling's job is taken over quickly.
 * Prints "ready" once the worker runs.
 */
import { systemClock } from '../../src/clock';
import { loadConfig } from '../../src/config';
import { createDb } from '../../src/db';
import { createLogger } from '../../src/logger';
import { createMetrics } from '../../src/ops/metrics';
import { Queues } from '../../src/queues';
import { createRedis } from '../../src/redis';
import { startImportWorker } from '../../workers/import-worker';

async function main() {
  const config = loadConfig();
  const redis = createRedis(config.REDIS_URL);
  redis.on('error', () => undefined);
  const deps = { config, db: createDb(config.DATABASE_URL, 5), redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() };
  const worker = await startImportWorker(deps, { lockDuration: 2000, stalledInterval: 1000 });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
}

if (require.main === module) main().catch((err) => {
  process.stderr.write(`import child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
