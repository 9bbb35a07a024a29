import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { processImport } from '../src/imports/service';
import { failImport } from '../src/imports/repo';
import { JOBS } from '../src/predictions/jobs';

/** A purchase import that adds at least this many purchases refits the predictions (API.md: "after large imports"). */
export const REFIT_AFTER = 1000;

/**
 * CSV imports: each job names one import; the work (parse into staging, then apply) is in
 * src/imports/service.ts and resumes where a dead worker left it. A job that fails its last
 * attempt marks the import failed, so that it never stays `running`.
 */
export async function startImportWorker(deps: Deps, options: { lockDuration?: number; stalledInterval?: number } = {}): Promise<Worker> {
  const worker = new Worker(
    QUEUE_NAMES.imports,
    async (job) => {
      const importId = (job.data as { importId: string }).importId;
      const r = await processImport(deps.db, deps.logger, importId, () => deps.clock.now());
      if (r?.status === 'done' && r.kind === 'purchases' && r.accepted >= REFIT_AFTER) {
        await deps.queues.get(QUEUE_NAMES.predictions).add(JOBS.fit, { workspaceId: r.workspaceId }, { jobId: `fit-${r.workspaceId}-import-${importId}`, removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 60_000 } });
      }
      return r;
    },
    // A long job keeps its lock by renewal; a dead worker's lock lapses in lockDuration and the job is stalled to another.
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: deps.config.IMPORT_CONCURRENCY, lockDuration: options.lockDuration ?? 60_000, stalledInterval: options.stalledInterval ?? 30_000, maxStalledCount: 5 },
  );
  worker.on('failed', (job, err) => {
    if (!job || job.attemptsMade < (job.opts.attempts ?? 1)) return;
    const importId = (job.data as { importId: string }).importId;
    deps.logger.error({ importId, err: err.message }, 'import failed after its last attempt');
    void failImport(deps.db, importId, `the import stopped: ${err.message.slice(0, 300)}`, deps.clock.now()).catch(() => undefined);
  });
  return worker;
}
