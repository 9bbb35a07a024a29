import { fork } from 'node:child_process';
import { systemClock } from '../src/clock';
import type { Config } from '../src/config';
import { createDb } from '../src/db';
import type { Deps } from '../src/deps';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/ops/metrics';
import { Queues } from '../src/queues';
import { createRedis } from '../src/redis';

/**
 * A load generator runs in a child process of its own, so that building requests and parsing
 * answers takes no event-loop turns from the server under test. `inChild` runs `file`'s job there;
 * the file calls `serveInChild` with the same job at its end.
 */
export function inChild<S, R>(file: string, spec: S): Promise<R> {
  return new Promise((resolve, reject) => {
    const child = fork(file, [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let done = false;
    child.once('message', (m: { ok: true; result: R } | { ok: false; error: string }) => {
      done = true;
      if (m.ok) resolve(m.result);
      else reject(new Error(`load generator: ${m.error}`));
    });
    child.once('error', reject);
    child.once('exit', (code) => done || reject(new Error(`load generator exited with ${code}`)));
    child.send(spec as object);
  });
}

/** In the child `inChild` forked (module is the file's own): run the job on the spec it is sent, answer, exit. */
export function serveInChild<S, R>(module: NodeModule, job: (spec: S) => Promise<R>): void {
  if (require.main !== module || !process.send) return;
  process.once('message', (spec: S) => {
    job(spec).then(
      (result) => process.send!({ ok: true, result }, () => process.exit(0)),
      (err: Error) => process.send!({ ok: false, error: err.stack ?? String(err) }, () => process.exit(1)),
    );
  });
}

/** A hark worker in a child process of its own (as ROLE=worker beside ROLE=api), started by `workerInChild`. */
export interface ChildWorker {
  pid: number;
  stop(): Promise<void>;
}

/**
 * Forks `file`, which calls `serveWorkerInChild` at its end, sends it `spec`, and resolves once its
 * worker is ready. `env` is added to this process's environment.
 */
export function workerInChild<S>(file: string, spec: S, env: NodeJS.ProcessEnv = {}): Promise<ChildWorker> {
  return new Promise((resolve, reject) => {
    const child = fork(file, [], { execArgv: ['-r', '@swc-node/register'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, ...env } });
    let ready = false;
    child.once('message', () => {
      ready = true;
      resolve({ pid: child.pid!, stop: () => new Promise<void>((r) => (child.once('exit', () => r()), child.send('stop'))) });
    });
    child.once('error', reject);
    child.once('exit', (code) => ready || reject(new Error(`${file} exited with ${code} before its worker was ready`)));
    child.send(spec as object);
  });
}

/**
 * In the child `workerInChild` forked (module is the file's own): `start` builds the worker from the
 * spec and returns what closes it (the worker, then its queues, pool and Redis); the child answers
 * once it is ready and closes everything and exits when told to stop.
 */
export function serveWorkerInChild<S>(module: NodeModule, start: (spec: S) => Promise<{ deps: Deps; worker: { close(): Promise<void> } }>): void {
  if (require.main !== module || !process.send) return;
  process.once('message', async (spec: S) => {
    const { deps, worker } = await start(spec);
    process.send!('ready');
    process.once('message', async () => {
      await worker.close();
      await deps.queues.close();
      await deps.db.destroy();
      await deps.redis.quit();
      process.exit(0);
    });
  });
}

/** A worker's Deps in a bench child: its own pool and Redis connection, queues under `prefix`, silent logs. */
export function childDeps(config: Config, poolMax: number, statementTimeoutMs: number | undefined, prefix: string): Deps {
  const redis = createRedis(config.REDIS_URL);
  const db = createDb(config.DATABASE_URL, poolMax, statementTimeoutMs);
  return { config, db, redis, queues: new Queues(redis, prefix), clock: systemClock, logger: createLogger('silent'), metrics: createMetrics() };
}
