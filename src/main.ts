// First, before the modules below are loaded: see heap.ts.
import './heap';
import type { Server } from 'node:http';
import type { Worker } from 'bullmq';
import type { Deps } from './deps';
import { systemClock } from './clock';
import { Config, ConfigError, loadConfig } from './config';
import { autovacuumWarning, createDb, Db, ensureDatabase, migrateLatest } from './db';
import { createLogger } from './logger';
import { DependencyDown, preflight } from './ops/preflight';
import express from 'express';
import { createMetrics, metricsMiddleware } from './ops/metrics';
import { opsRoutes } from './ops/routes';
import { Queues } from './queues';
import { resolveSecrets } from './secrets';
import { checkRedisTopology, createRedis } from './redis';
import { closeWorkers, startWorkers } from '../workers';

/**
 * One build, three roles: `api` serves HTTP, `worker` runs the BullMQ workers (and serves only the
 * operations endpoints), `all` does both.
 * Boot creates the database if missing and migrates it; SIGTERM/SIGINT stop taking work, let
 * running jobs finish, and close the pools, within SHUTDOWN_TIMEOUT_MS.
 */
export async function start(config: Config) {
  const logger = createLogger(config.LOG_LEVEL, { pretty: config.NODE_ENV === 'development' });
  let deps: Deps | undefined;
  let server: Server | undefined;
  let workers: Worker[] = [];
  let workerDb: Db | undefined;

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
      await Promise.allSettled([deps.db.destroy(), workerDb?.destroy(), deps.redis.quit()]);
    }
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  booted = (async () => {
    await preflight(config.DATABASE_URL, config.REDIS_URL);
    // The first line a newcomer reads says where to go.
    if (config.ROLE !== 'worker') logger.info(`hark starting: console at ${consoleUrl(config, config.PORT)} (API docs at /docs)`);
    await ensureDatabase(config.DATABASE_URL);
    // Migrations run on a connection of their own, without the timeout (an index on a large table).
    const migrator = createDb(config.DATABASE_URL, 1);
    let resolved: Config;
    let stale: string | null | undefined;
    try {
      await migrateLatest(migrator);
      // Said after the line with the address, which a newcomer reads first.
      stale = await autovacuumWarning(migrator);
      resolved = await resolveSecrets(config, migrator);
    } finally {
      await migrator.destroy();
    }
    // The API's queries answer a request: STATEMENT_TIMEOUT_MS bounds them (a 503 past it). The
    // workers' statements are whole-audience batches (a million-row fan-out takes half a minute)
    // that no request waits on: they get their own, longer bound. With ROLE=all each has its pool.
    const db = createDb(config.DATABASE_URL, config.DB_POOL_MAX, config.ROLE === 'worker' ? config.WORKER_STATEMENT_TIMEOUT_MS : config.STATEMENT_TIMEOUT_MS);
    await checkRedisTopology(config.REDIS_URL);
    const redis = createRedis(config.REDIS_URL);
    const d: Deps = { config: resolved, db, redis, queues: new Queues(redis, config.QUEUE_PREFIX), clock: systemClock, logger, metrics: createMetrics() };
    deps = d;
    if (config.ROLE === 'all') workerDb = createDb(config.DATABASE_URL, config.DB_POOL_MAX, config.WORKER_STATEMENT_TIMEOUT_MS);
    workers = config.ROLE !== 'api' ? await startWorkers(workerDb ? { ...d, db: workerDb } : d) : [];
    // A worker serves only the operations endpoints (/healthz, /readyz, /metrics), so that an
    // orchestrator can probe it and Prometheus can scrape its queue depths.
    // The API (every route, the OpenAPI document, twilio's webhook validation) is required only by
    // the roles that serve it: a worker's memory holds none of it (issue 4: worker RSS < 300 MB).
    const app = config.ROLE === 'worker' ? express().disable('x-powered-by').use(metricsMiddleware(d.metrics), opsRoutes(d)) : (require('./app') as typeof import('./app')).buildApp(d);
    const s = app.listen(config.PORT);
    server = s;
    await new Promise<void>((resolve, reject) => s.once('listening', resolve).once('error', reject));
    const port = (s.address() as { port: number }).port;
    if (config.ROLE === 'worker') logger.info({ port, role: config.ROLE }, `hark listening on port ${port} (worker: operations endpoints only)`);
    else logger.info({ port, role: config.ROLE }, `hark listening: console ${consoleUrl(config, port)}`);
    if (config.SMTP_URL === 'inbox:') logger.info('email goes to the built-in inbox (SMTP_URL=inbox:): see the console\'s Inbox page');
    if (workers.length) logger.info({ workers: workers.length }, 'workers started');
    if (stale) logger.warn(stale);
  })();
  await booted;
  return deps!;
}

/** Where a person opens the console: PUBLIC_URL, unless it is the default for another port. */
function consoleUrl(config: Config, port: number): string {
  const base = config.PUBLIC_URL.replace(/\/+$/, '');
  return `${/^http:\/\/localhost:\d+$/.test(base) ? `http://localhost:${port}` : base}/app/`;
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
    process.stderr.write(err instanceof DependencyDown ? `${err.message}\n` : `hark failed to start: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
