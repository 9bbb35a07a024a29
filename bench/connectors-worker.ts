import { fork } from 'node:child_process';
import type { Deps } from '../src/deps';
import { systemClock } from '../src/clock';
import { loadConfig } from '../src/config';
import { createDb } from '../src/db';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';
import { startConnectorWorker } from '../workers/connector-worker';

/**
 * The connector worker in a process of its own (hark's ROLE=worker beside ROLE=api), for
 * BENCH_WORKER=process: the API's answers then do not share an event loop with the mapping.
 */
export function startWorkerProcess(env: Record<string, string>, prefix: string): Promise<{ stop(): Promise<void> }> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
    child.once('error', reject);
    child.once('message', () =>
      resolve({
        stop: () =>
          new Promise<void>((r) => {
            child.once('exit', () => r());
            child.send('stop');
          }),
      }),
    );
    child.send(prefix);
  });
}

if (require.main === module && process.send) {
  process.once('message', async (prefix: string) => {
    const config = loadConfig(process.env);
    const redis = createRedis(config.REDIS_URL);
    const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX);
    const deps: Deps = { config, db, redis, queues: new Queues(redis, prefix), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
    const worker = await startConnectorWorker(deps);
    process.send!('ready');
    process.once('message', async () => {
      await worker.close();
      await deps.queues.close();
      await db.destroy();
      await redis.quit();
      process.exit(0);
    });
  });
}
