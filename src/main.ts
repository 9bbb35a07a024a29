// First, before the modules below are loaded: see heap.ts.
import './heap';
import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Deps } from './deps';
import { systemClock } from './clock';
import { Config, ConfigError, loadConfig } from './config';
import { autovacuumWarning, createDb, ensureDatabase, migrateLatest } from './db';
import { createLogger } from './logger';
import express from 'express';
import { createMetrics, metricsMiddleware } from './ops/metrics';
import { opsRoutes } from './ops/routes';
import { Queues } from './queues';
import { checkRedisTopology, createRedis } from './redis';
import { closeWorkers, startWorkers } from '../workers';

/**
 * One build, three roles: `api` serves HTTP, `worker` runs the BullMQ workers (and serves only the
 * operations endpoints), `all` does both.
 * Boot creates the database if missing and migrates it; SIGTERM/SIGINT stop taking work, let
 * running jobs finish, and close the pools, within SHUTDOWN_TIMEOUT_MS.
 */
export async function start(config: Config) {
  const logger = createLogger(config.LOG_LEVEL);
  let deps: Deps | undefined;
  let server: Server | undefined;
  let workers: Worker[] = [];

  // Signals are handled from the first line: a SIGTERM during boot (an orchestrator giving up, a
  // test) waits for boot to settle, then closes what exists, instead of killing the process mid-migration.
  let booted: Promise<unknown> = Promise.resolve();
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
    await booted.catch(() => undefined);
    await Promise.allSettled([server ? new Promise((r) => server!.close(r)) : undefined, closeWorkers(workers)]);
    server?.closeAllConnections();
    if (deps) {
      await deps.queues.close();
      await Promise.allSettled([deps.db.destroy(), deps.redis.quit()]);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  booted = (async () => {
    await ensureDatabase(config.DATABASE_URL);
    const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX);
    await migrateLatest(db);
    const stale = await autovacuumWarning(db);
    if (stale) logger.warn(stale);
    await checkRedisTopology(config.REDIS_URL);
    const redis = createRedis(config.REDIS_URL);
    const d: Deps = { config, db, redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger, metrics: createMetrics() };
    deps = d;
    workers = config.ROLE !== 'api' ? await startWorkers(d) : [];
    if (workers.length) logger.info({ workers: workers.length }, 'workers started');
    // A worker serves only the operations endpoints (/healthz, /readyz, /metrics), so that an
    // orchestrator can probe it and Prometheus can scrape its queue depths.
    // The API (every route, the OpenAPI document, twilio's webhook validation) is required only by
    // the roles that serve it: a worker's memory holds none of it (issue 4: worker RSS < 300 MB).
    const app = config.ROLE === 'worker' ? express().disable('x-powered-by').use(metricsMiddleware(d.metrics), opsRoutes(d)) : (require('./app') as typeof import('./app')).buildApp(d);
    const s = app.listen(config.PORT);
    server = s;
    await new Promise<void>((resolve, reject) => s.once('listening', resolve).once('error', reject));
    logger.info({ port: config.PORT, role: config.ROLE }, 'hark listening');
  })();
  await booted;
  return deps!;
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
