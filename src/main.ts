import type { Server } from 'node:http';
import { buildApp, Deps } from './app';
import { systemClock } from './clock';
import { Config, ConfigError, loadConfig } from './config';
import { createDb, ensureDatabase, migrateLatest } from './db';
import { createLogger } from './logger';
import { createMetrics } from './ops/metrics';
import { Queues } from './queues';
import { createRedis } from './redis';
import { closeWorkers, startWorkers } from '../workers';

/**
 * One build, three roles: `api` serves HTTP, `worker` runs the BullMQ workers, `all` does both.
 * Boot creates the database if missing and migrates it; SIGTERM/SIGINT stop taking work, let
 * running jobs finish, and close the pools, within SHUTDOWN_TIMEOUT_MS.
 */
export async function start(config: Config) {
  const logger = createLogger(config.LOG_LEVEL);
  await ensureDatabase(config.DATABASE_URL);
  const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX);
  await migrateLatest(db);
  const redis = createRedis(config.REDIS_URL);
  const deps: Deps = { config, db, redis, queues: new Queues(redis), clock: systemClock, logger, metrics: createMetrics() };

  let server: Server | undefined;
  if (config.ROLE !== 'worker') {
    server = buildApp(deps).listen(config.PORT);
    await new Promise<void>((resolve, reject) => server!.once('listening', resolve).once('error', reject));
    logger.info({ port: config.PORT, role: config.ROLE }, 'hark listening');
  }
  const workers = config.ROLE !== 'api' ? await startWorkers(deps) : [];
  if (workers.length) logger.info({ workers: workers.length }, 'workers started');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed; exiting');
      process.exit(1);
    }, config.SHUTDOWN_TIMEOUT_MS);
    deadline.unref();
    await Promise.allSettled([
      server ? new Promise((r) => server!.close(r)) : Promise.resolve(),
      closeWorkers(workers),
    ]);
    server?.closeAllConnections();
    await deps.queues.close();
    await Promise.allSettled([db.destroy(), redis.quit()]);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  return deps;
}

if (require.main === module) {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  start(config).catch((err) => {
    process.stderr.write(`hark failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
