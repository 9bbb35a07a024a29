import { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { QUEUE_NAMES } from '../src/queues';
import { JOBS, runFitJob, runScoreJob } from '../src/predictions/jobs';
import { workspacesWithPurchases } from '../src/predictions/repo';
import { workspacesWithRules } from '../src/scoring/repo';
import { scoreLeads } from '../src/scoring/service';

/**
 * Predictions on a schedule and on demand: the nightly fit fans out one `fit` job per workspace
 * with purchases (each fits as of now and scores its customers); `score` writes a stored fit's
 * forecasts for workspaces too large to score inside the API request. Lead scores are re-computed
 * nightly too (`lead-scores`, one job per workspace with rules): rules on recency or on the
 * predictions drift as days pass, and customers created since the last PUT start at 0.
 */
export async function startPredictionsWorker(deps: Deps): Promise<Worker> {
  const queue = deps.queues.get(QUEUE_NAMES.predictions);
  await queue.upsertJobScheduler('nightly-fit', { pattern: '23 2 * * *' }, { name: JOBS.nightlyFit });
  return new Worker(
    QUEUE_NAMES.predictions,
    async (job) => {
      const data = job.data as { workspaceId?: string; fitId?: string };
      switch (job.name) {
        case JOBS.nightlyFit: {
          const day = deps.clock.now().toISOString().slice(0, 10);
          const ids = await workspacesWithPurchases(deps.db);
          // One job per workspace (deduplicated per day), so that one failing workspace retries alone.
          const jobOpts = { removeOnComplete: 1000, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 60_000 } };
          await queue.addBulk(ids.map((workspaceId) => ({ name: JOBS.fit, data: { workspaceId }, opts: { ...jobOpts, jobId: `fit-${workspaceId}-${day}` } })));
          // Added after the fits, so (one job at a time) a rule on churnRisk reads tonight's scores.
          const scored = await workspacesWithRules(deps.db);
          await queue.addBulk(scored.map((workspaceId) => ({ name: JOBS.leads, data: { workspaceId }, opts: { ...jobOpts, jobId: `leads-${workspaceId}-${day}` } })));
          return { workspaces: ids.length, leadScoreWorkspaces: scored.length };
        }
        case JOBS.fit:
          return runFitJob(deps.db, deps.logger, data.workspaceId!, deps.clock.now());
        case JOBS.leads:
          return { changed: await scoreLeads(deps.db, data.workspaceId!, deps.clock.now()) };
        case JOBS.score:
          return { scored: await runScoreJob(deps.db, data.workspaceId!, data.fitId!) };
        default:
          return null;
      }
    },
    // One fit at a time: a fit holds a workspace's summaries in memory and uses a core.
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: 1, lockDuration: 120_000 },
  );
}
