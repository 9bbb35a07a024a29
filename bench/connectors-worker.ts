import { ChildWorker, childDeps, serveWorkerInChild, workerInChild } from './fork';
import { loadConfig } from '../src/config';
import { startConnectorWorker } from '../workers/connector-worker';

/**
 * The connector worker in a process of its own (hark's ROLE=worker beside ROLE=api), for
 * BENCH_WORKER=process: the API's answers then do not share an event loop with the mapping.
 */
export function startWorkerProcess(env: Record<string, string>, prefix: string): Promise<ChildWorker> {
  return workerInChild(__filename, prefix, env);
}

serveWorkerInChild(module, async (prefix: string) => {
  const config = loadConfig(process.env);
  const deps = childDeps(config, config.DB_POOL_MAX, undefined, prefix);
  return { deps, worker: await startConnectorWorker(deps) };
});
