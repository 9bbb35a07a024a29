import { randomUUID } from 'node:crypto';
import type { Worker } from 'bullmq';
import type { Deps } from '../src/deps';
import { ClosableWorker } from './closable-worker';
import { channelsFromConfig } from '../src/channels/config';
import { Channels, dispatchBatch, DispatchContext } from '../src/messages/dispatch';
import { RateLimiter } from '../src/messages/rate';
import { heartbeat, removeWorker } from '../src/messages/repo';
import { DEFAULT_SWEEP, sweepOutbox, SweepOptions } from '../src/messages/sweeper';
import { QUEUE_NAMES } from '../src/queues';

export interface DispatchWorkerOptions {
  /** Providers; by default built from config (SMTP_URL, TWILIO_*). */
  channels?: Channels;
  concurrency?: number;
  /** Provider calls in flight per job (default 32). */
  parallel?: number;
  sweepEveryMs?: number;
  sweep?: SweepOptions;
}


/**
 * Dispatch jobs carry message ids; the work is dispatchBatch. On close (SIGTERM) its running jobs
 * stop claiming, let the sends in flight finish and return the rows they hold to 'queued' (see
 * dispatchBatch), so a shutdown takes about one provider round trip, not the rest of a rate-limited
 * job; then the worker closes its sweeper timer, its providers and its heartbeat row.
 */
export async function startDispatchWorker(deps: Deps, opts: DispatchWorkerOptions = {}): Promise<Worker> {
  const workerId = randomUUID();
  let channels = opts.channels;
  if (!channels) {
    const own = channelsFromConfig(deps.config);
    // Loading nodemailer and twilio in the thread takes a few hundred ms of CPU: done at boot,
    // before the first job. Sends handed to a thread still loading would wait there past the
    // instants the rate limiter gave them and then leave at once, over the ceiling in that second.
    await own.warm();
    channels = own;
  }
  // Aborted by close(): running jobs stop claiming, finish their sends and give back their rows.
  const stop = new AbortController();
  const ctx: DispatchContext = {
    db: deps.db,
    clock: deps.clock,
    config: deps.config,
    logger: deps.logger,
    channels,
    rate: new RateLimiter(deps.redis, deps.queues.prefix, { email: deps.config.EMAIL_RATE_PER_SECOND, sms: deps.config.SMS_RATE_PER_SECOND }),
    workerId,
    // Provider calls in flight per job, and the claim's chunk size; a crash can leave at most
    // atRiskPerJob(parallel) rows of each running job 'unknown' (src/messages/dispatch.ts).
    parallel: opts.parallel ?? 32,
    stopping: stop.signal,
  };
  // The heartbeat row exists before the first claim, so no sweeper can take our rows for orphans.
  await heartbeat(deps.db, workerId);
  const worker = new ClosableWorker(
    QUEUE_NAMES.dispatch,
    async (job) => {
      const data = job.data as { ids: string[]; periods?: string[] };
      await dispatchBatch(ctx, data.ids.map(String), data.periods);
    },
    { connection: deps.redis.duplicate(), prefix: deps.queues.prefix, concurrency: opts.concurrency ?? 2 },
  );
  worker.on('error', (err) => deps.logger.error({ err: err.message }, 'dispatch worker error'));
  let sweeping = false;
  const timer = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    sweepOutbox(deps, workerId, opts.sweep ?? DEFAULT_SWEEP)
      .catch((err) => deps.logger.error({ err: (err as Error).message }, 'dispatch sweep failed'))
      .finally(() => (sweeping = false));
  }, opts.sweepEveryMs ?? 2000);
  worker.beforeClose = () => stop.abort();
  worker.cleanup = async () => {
    clearInterval(timer);
    while (sweeping) await new Promise((r) => setTimeout(r, 20));
    await Promise.allSettled([channels.email.close(), channels.sms.close()]);
    await removeWorker(deps.db, workerId).catch(() => undefined);
  };
  return worker;
}
