// As in src/main.ts: V8's heap growth set before anything else loads.
import '../src/heap';
/**
 * The import bench's worker process: only the import worker, configured from the environment as
 * `ROLE=worker` would be, so that its memory is the import's alone. Prints "ready" once it runs.
 */
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { startImportWorker } from '../workers/import-worker';

async function main() {
  const config = loadConfig();
  const redis = createRedis(config.REDIS_URL);
  const deps = { config, db: createDb(config.DATABASE_URL, 5), redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() };
  const worker = await startImportWorker(deps);
  // Connected and listening before the bench starts its clock (a slow Redis connect once held the first job ~10 s).
  await worker.waitUntilReady();
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
}

main().catch((err) => {
  process.stderr.write(`import worker failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
