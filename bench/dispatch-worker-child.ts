/**
 * The dispatch worker alone in its own process, for bench/dispatch.ts: its RSS is then the
 * worker's, not the bench's (which also runs the SMTP server and the Twilio stand-in). Configured
 * from the environment like `ROLE=worker`; DISPATCH_CONCURRENCY sets the BullMQ concurrency.
 * Prints "ready" once the worker runs; SIGTERM closes it and exits.
 */
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { startDispatchWorker } from '../workers/dispatch-worker';

async function main() {
  const config = loadConfig();
  const redis = createRedis(config.REDIS_URL);
  const deps = { config, db: createDb(config.DATABASE_URL, 10), redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger: createLogger(config.LOG_LEVEL), metrics: createMetrics() };
  const worker = await startDispatchWorker(deps, { concurrency: Number(process.env.DISPATCH_CONCURRENCY ?? 4) });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => {
    void worker
      .close()
      .then(() => Promise.allSettled([deps.db.destroy(), deps.queues.close(), redis.quit()]))
      .finally(() => process.exit(0));
  });
}

main().catch((err) => {
  process.stderr.write(`dispatch worker child failed: ${(err as Error).stack}\n`);
  process.exit(1);
});
