import type { Db } from '../db';
import type { Logger } from '../logger';
import { AppError } from '../errors';
import { QUEUE_NAMES, type Queues } from '../queues';
import * as repo from './repo';
import { fitWorkspace, scoreWithStoredFit, scoreWorkspace } from './service';
import { scoreLeads } from '../scoring/service';

/** Above this many customers the API answers with the fit and leaves the scoring to a job. */
export const INLINE_SCORE_LIMIT = 200_000;

/** Job names of the predictions queue; data is {workspaceId, fitId?}: ids only. */
export const JOBS = { nightlyFit: 'nightly-fit', fit: 'fit', score: 'score', leads: 'lead-scores' } as const;

const opts = { removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 30_000 } };

export async function enqueueScoring(queues: Queues, workspaceId: string, fitId: string): Promise<void> {
  await queues.get(QUEUE_NAMES.predictions).add(JOBS.score, { workspaceId, fitId }, { ...opts, jobId: `score-${workspaceId}-${fitId}` });
}

/** A fit on demand as a job (after a large import, say): asOf is when it runs. */
export async function enqueueFit(queues: Queues, workspaceId: string): Promise<void> {
  await queues.get(QUEUE_NAMES.predictions).add(JOBS.fit, { workspaceId }, opts);
}

/**
 * The job's fit: as of now, in the time unit of the workspace's last fit (day by default),
 * scoring in the same job. A workspace too small to fit is not an error worth retrying.
 */
export async function runFitJob(db: Db, logger: Logger, workspaceId: string, now: Date): Promise<{ fitId: string; scored: number } | null> {
  const previous = await repo.lastFit(db, workspaceId);
  try {
    const { fit, summary } = await fitWorkspace(db, workspaceId, now, previous?.time_unit ?? 'day', now, previous?.model ?? 'mbg-nbd');
    const scored = await scoreWorkspace(db, fit, summary, new Date());
    await scoreLeads(db, workspaceId, now);
    logger.info({ workspaceId, fitId: fit.id, scored, params: fit.params }, 'predictions fitted and scored');
    return { fitId: String(fit.id), scored };
  } catch (err) {
    if (err instanceof AppError && err.code === 'unprocessable') {
      logger.info({ workspaceId, reason: err.message }, 'predictions skipped: the workspace cannot be fitted');
      return null;
    }
    throw err;
  }
}

export async function runScoreJob(db: Db, workspaceId: string, fitId: string): Promise<number> {
  const scored = await scoreWithStoredFit(db, workspaceId, fitId, new Date());
  if (scored > 0) await scoreLeads(db, workspaceId, new Date());
  return scored;
}
