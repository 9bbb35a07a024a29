import type { Clock } from '../clock';
import type { Db } from '../db';
import type { Logger } from '../logger';
import { QUEUE_NAMES, Queues } from '../queues';
import { requestDispatch } from './dispatch';
import * as repo from './repo';

export interface SweepOptions {
  /** A worker whose heartbeat is older than this is gone: its 'sending' rows become 'unknown'. */
  deadAfterMs: number;
  /** A dispatch request older than this is presumed lost even while the queue holds other jobs. */
  requestLeaseMs: number;
  /** With an empty dispatch queue, a request older than this is presumed lost (Redis restarted). */
  idleLeaseMs: number;
}

export const DEFAULT_SWEEP: SweepOptions = { deadAfterMs: 15_000, requestLeaseMs: 10 * 60_000, idleLeaseMs: 5_000 };

/**
 * The outbox's safety net, run on a timer in every dispatch worker process (not through Redis, so
 * that it survives a Redis restart): keeps this worker's heartbeat, turns orphaned 'sending' rows
 * into 'unknown' (never resent), and re-requests dispatch for due queued rows whose job is lost
 * or that were deferred (quiet hours, retry backoff). Several sweepers may run at once.
 */
export async function sweepOutbox(deps: { db: Db; queues: Queues; clock: Clock; logger: Logger }, workerId: string, opts: SweepOptions = DEFAULT_SWEEP) {
  const wall = new Date();
  await repo.heartbeat(deps.db, workerId);
  const orphans = await repo.markOrphansUnknown(deps.db, opts.deadAfterMs);
  if (orphans) deps.logger.warn({ orphans }, 'dispatch: rows of a stopped worker marked unknown');

  const counts = await deps.queues.get(QUEUE_NAMES.dispatch).getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  const pending = Object.values(counts).reduce((a, b) => a + b, 0);
  const staleBefore = new Date(wall.getTime() - (pending === 0 ? opts.idleLeaseMs : opts.requestLeaseMs));
  let requested = 0;
  for (;;) {
    const rows = await repo.takeUndispatched(deps.db, deps.clock.now(), staleBefore, wall, 5000);
    if (!rows.length) break;
    // One request per period, so that each job's claims touch one partition of messages.
    const byPeriod = new Map<string, string[]>();
    for (const r of rows) byPeriod.set(r.period, [...(byPeriod.get(r.period) ?? []), r.id]);
    for (const [period, ids] of byPeriod) await requestDispatch(deps.queues, ids, undefined, [period]);
    requested += rows.length;
    if (rows.length < 5000) break;
  }
  if (requested) deps.logger.info({ requested }, 'dispatch: due messages requested by the sweeper');
  return { orphans, requested };
}
