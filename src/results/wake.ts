import type { Logger } from '../logger';
import { QUEUE_NAMES, Queues } from '../queues';

/** The job the results worker runs: the scheduled fallback and the wake-ups share its name. */
export const ATTRIBUTION_JOB = 'attribution';

/**
 * Wakes the attribution worker soon after purchases commit, instead of leaving them to its
 * schedule (every 60 s). Call it after a commit that stored purchases; it never waits and never
 * throws (a lost wake-up leaves the purchases to the schedule).
 *
 * Debounced by time slots of `everyMs`: a call asks for the job of the slot that ends next,
 * delayed to that end, under a job id naming the slot, so all the processes of an installation
 * together add at most one job per slot (BullMQ ignores an add under an id it holds) and this
 * process sends at most one add per slot. No commit can be missed: the slot's end is later than
 * the call, which follows the commit, so the slot's job, whoever added it, starts after the
 * commit and reads it from the feed. Job ids are freed on completion; the one queue
 * (QUEUE_NAMES.results, one hash tag) keeps it to one Redis Cluster slot.
 */
export function attributionWaker(queues: Queues, opts: { everyMs: number; logger?: Logger; now?: () => number }): () => void {
  const now = opts.now ?? Date.now;
  let asked = 0;
  if (opts.everyMs <= 0) return () => undefined;
  return () => {
    const t = now();
    const end = (Math.floor(t / opts.everyMs) + 1) * opts.everyMs;
    if (end === asked) return;
    asked = end;
    queues
      .get(QUEUE_NAMES.results)
      .add(ATTRIBUTION_JOB, {}, { jobId: `wake-${end}`, delay: end - t, removeOnComplete: true, removeOnFail: true })
      .catch((err: unknown) => {
        if (asked === end) asked = 0;
        opts.logger?.warn({ err }, 'attribution wake-up not queued; the schedule will attribute');
      });
  };
}
