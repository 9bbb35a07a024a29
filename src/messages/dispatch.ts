import type { Channel, OutgoingEmail, OutgoingSms } from '../channels/types';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db';
import type { Logger } from '../logger';
import { QUEUE_NAMES, Queues } from '../queues';
import { customerScope, workspaceScope } from '../templates/context';
import { getWorkspace } from '../workspaces/repo';
import { cached, JobCache, Outcome, ReadyMessage, record, sendOne } from './dispatch-send';
import type { RateLimiter } from './rate';
import * as repo from './repo';
import { frequencyCapped, sendAddress, verdictFor } from './rules';

export { MAX_ATTEMPTS } from './dispatch-send';

/**
 * Message ids per dispatch job. A job claims them a chunk at a time as its sends go out, so a
 * bigger job puts no more rows at risk in a crash, and costs fewer Redis round trips a message.
 */
export const DISPATCH_BATCH = 1024;

/**
 * Enqueues dispatch jobs for these message ids (ids only in Redis, and the periods of their rows
 * when the caller knows them: a superset of them, so that the job's statements prune messages'
 * partitions, migrations/0022); `at` delays them.
 */
export async function requestDispatch(queues: Queues, messageIds: string[], at?: Date, periods?: string[]): Promise<void> {
  if (!messageIds.length) return;
  const delay = at ? Math.max(0, at.getTime() - Date.now()) : 0;
  const q = queues.get(QUEUE_NAMES.dispatch);
  const jobs = [];
  for (let i = 0; i < messageIds.length; i += DISPATCH_BATCH) {
    jobs.push({ name: 'dispatch', data: { ids: messageIds.slice(i, i + DISPATCH_BATCH), ...(periods?.length ? { periods } : {}) }, opts: { delay, removeOnComplete: true, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } } });
  }
  await q.addBulk(jobs);
}

export interface Channels {
  email: Channel<OutgoingEmail>;
  sms: Channel<OutgoingSms>;
}

export interface DispatchContext {
  db: Db;
  clock: Clock;
  config: Config;
  logger: Logger;
  channels: Channels;
  rate: RateLimiter;
  workerId: string;
  /** Provider calls in flight per job. */
  parallel: number;
  /**
   * Aborted when the worker shuts down: running jobs stop claiming and taking new messages, let
   * the sends in flight finish and record them, and give back every row they hold (see dispatchBatch).
   */
  stopping?: AbortSignal;
}

type Totals = { sent: number; skipped: number; failed: number; released: number };

/** The most rows one job can hold in 'sending' at once (see dispatchBatch), for `parallel` lanes. */
export const atRiskPerJob = (parallel: number) => 6 * Math.max(1, parallel);

/**
 * One dispatch job, as a pipeline: `parallel` lanes each take the next ready message, render it
 * and hand it to the provider; the next chunk is claimed (queued -> sending, with the rules
 * re-checked) while the current one is still going out, and outcomes are written in batches
 * behind the sends. So the provider connections never wait for a claim or a write.
 * Rows at risk in a crash (left 'sending', later 'unknown', never resent) are bounded by
 * atRiskPerJob: under two chunks claimed and waiting, a chunk in flight, and under three chunks of
 * outcomes not yet committed (lanes wait when the writes fall that far behind). Rows this job does
 * not claim were taken by another worker, cancelled, or are not due: skipped.
 * On shutdown (ctx.stopping) the job ends early without failing: rows claimed and not handed to a
 * provider go back to 'queued', and the ids it had not claimed yet are marked for the sweeper to
 * request again (any worker's, within its sweep interval), so a deploy loses and doubles nothing.
 */
export async function dispatchBatch(ctx: DispatchContext, ids: string[], periods?: string[]): Promise<Totals> {
  const totals: Totals = { sent: 0, skipped: 0, failed: 0, released: 0 };
  const stopping = () => ctx.stopping?.aborted === true;
  const chunk = Math.max(1, ctx.parallel);
  const cache: JobCache = { workspaces: new Map(), templates: new Map() };
  const pace: Pace = {};
  const ready: ReadyMessage[] = [];
  let next = 0;
  let claiming: Promise<void> | null = null;
  let failure: unknown = null;

  // Claims run one at a time; a failed claim stops the lanes (the job fails and is retried).
  const claimMore = () => {
    if (claiming || failure || stopping() || next >= ids.length || ready.length >= chunk) return claiming;
    const slice = ids.slice(next, (next += chunk));
    claiming = prepareChunk(ctx, slice, cache, totals, pace, periods)
      .then((rows) => void ready.push(...rows))
      // A claim cut short by the shutdown released its rows (prepareChunk): not a failure.
      .catch((err) => void (stopping() || (failure = err)))
      .finally(() => (claiming = null));
    return claiming;
  };

  const outcomes: Outcome[] = [];
  let unwritten = 0; // outcomes not yet committed, queued or being written
  let writing: Promise<void> = Promise.resolve();
  const write = () => {
    const batch = outcomes.splice(0);
    if (!batch.length) return;
    writing = writing.then(async () => {
      const r = await record(ctx, batch);
      unwritten -= batch.length;
      totals.sent += r.sent;
      totals.failed += r.failed;
    });
    writing.catch((err) => void (failure ??= err));
  };

  const lane = async () => {
    for (;;) {
      claimMore();
      if (stopping()) return;
      let m = ready.shift();
      while (!m && !failure && !stopping() && (claiming || next < ids.length)) {
        await (claimMore() ?? claiming);
        m = ready.shift();
      }
      if (!m || failure || stopping()) {
        if (m) ready.unshift(m);
        return;
      }
      // The send waits for its instant under the rate ceiling (src/messages/rate.ts) here, next to
      // the provider call; a shutdown or a limiter failure during the wait gives the row back.
      const due = await ctx.rate.pace(m.channel, ctx.stopping).catch((err) => void (failure ??= err));
      if (!due) {
        ready.unshift(m);
        return;
      }
      const outcome = await sendOne(ctx, m, cache, ctx.clock.now());
      ctx.rate.sent(m.channel);
      outcomes.push(outcome);
      unwritten++;
      if (outcomes.length >= chunk) write();
      // Backpressure: no new send while two chunks of outcomes wait for their write.
      while (unwritten >= 2 * chunk && !failure) await writing.catch(() => undefined);
    }
  };

  await Promise.all(Array.from({ length: chunk }, lane));
  await claiming;
  write();
  await writing.catch(() => undefined);
  if (ready.length) {
    // Claimed but never handed to a provider (the job is failing or the worker stopping): back to queued, safe to send later.
    const back = ready.splice(0);
    await repo.requeue(ctx.db, back.map((m) => ({ id: m.id, until: ctx.clock.now(), quiet: false, period: m.period }))).catch((err) => void (failure ??= err));
    totals.released += back.length;
  }
  if (stopping() && next < ids.length) {
    // Never claimed: still queued; the next sweep (any worker's) requests them again.
    const rest = ids.slice(next);
    await repo.releaseUnclaimed(ctx.db, rest, periods).catch((err) => void (failure ??= err));
    totals.released += rest.length;
  }
  if (failure) throw failure;
  return totals;
}

/**
 * Claims a chunk and applies the sending rules to it (consent, suppression list, frequency cap,
 * quiet hours): skips and deferrals are written at once, the rest come back ready to send.
 * Rate-limit tokens are taken for what was claimed before any of it is sent.
 */
async function prepareChunk(ctx: DispatchContext, ids: string[], cache: JobCache, totals: Totals, pace: Pace, periods?: string[]): Promise<ReadyMessage[]> {
  // Tokens for the channel of the job's last chunk come before the claim (a job is usually one
  // campaign's): under the rate limit rows wait for them still 'queued', so a crash during the
  // wait leaves them to be sent rather than 'unknown'. Other channels' rows pay after the claim.
  const prepaid = pace.channel;
  if (prepaid) await ctx.rate.take(prepaid, ids.length, ctx.stopping);
  const now = ctx.clock.now();
  const claimed = await repo.claimForSend(ctx.db, ids, ctx.workerId, now, periods);
  // A chunk that claimed nothing (rows sent already, by a re-requested job) stops the prepaying.
  pace.channel = mostCommonChannel(claimed);
  try {
    return await applyRules(ctx, claimed, cache, totals, now, prepaid ? { [prepaid]: ids.length } : {});
  } catch (err) {
    // Nothing of this chunk reached a provider: whatever is still 'sending' goes back to queued
    // (rows already skipped or deferred are no longer 'sending' and stay as they are). Left
    // 'sending', the rows would wait for this worker's death and then be 'unknown', never sent.
    await repo
      .requeue(ctx.db, claimed.map((m) => ({ id: m.id, until: now, quiet: false, period: m.period })))
      .catch((e) => ctx.logger.error({ err: (e as Error).message, rows: claimed.length }, 'dispatch: could not release a failed chunk'));
    throw err;
  }
}

/** Which channel a job's chunks pay rate-limit tokens for before their claim (see prepareChunk). */
type Pace = { channel?: 'email' | 'sms' };

function mostCommonChannel(rows: repo.ClaimedForSend[]): 'email' | 'sms' | undefined {
  if (!rows.length) return undefined;
  const email = rows.filter((r) => r.channel === 'email').length;
  return email * 2 >= rows.length ? 'email' : 'sms';
}

/** The rules and the rate limit for a claimed chunk (see prepareChunk). */
async function applyRules(ctx: DispatchContext, claimed: repo.ClaimedForSend[], cache: JobCache, totals: Totals, now: Date, prepaid: Record<string, number>): Promise<ReadyMessage[]> {
  const perChannel = new Map<string, number>();
  for (const m of claimed) perChannel.set(m.channel, (perChannel.get(m.channel) ?? 0) + 1);
  for (const [channel, n] of perChannel) {
    const owed = n - (prepaid[channel] ?? 0);
    if (owed > 0) await ctx.rate.take(channel, owed, ctx.stopping);
  }

  const byWorkspace = new Map<string, repo.ClaimedForSend[]>();
  for (const m of claimed) {
    const list = byWorkspace.get(m.workspace_id);
    if (list) list.push(m);
    else byWorkspace.set(m.workspace_id, [m]);
  }
  const ready: ReadyMessage[] = [];
  const skips: Array<{ id: string; reason: string; period: string }> = [];
  const defers: Array<{ id: string; until: Date; quiet: boolean; period: string }> = [];
  for (const [workspaceId, rows] of byWorkspace) {
    const workspace = await cached(cache.workspaces, workspaceId, () => getWorkspace(ctx.db, workspaceId));
    const settings = workspace.settings;
    // The cap counts what was sent; this chunk's rows were still 'queued' in the claim's snapshot.
    const capped = await frequencyCapped(ctx.db, rows.flatMap((r) => (r.customer_id ? [r.customer_id] : [])), settings.frequencyCap, now, {
      planned: false,
      excludeMessageIds: claimed.map((m) => m.id),
    });
    const wsScope = workspaceScope(workspace);
    for (const r of rows) {
      const customer = r.customer ?? undefined;
      const address = sendAddress(r.channel, customer as Parameters<typeof sendAddress>[1], r.address);
      const v = verdictFor(r.channel, customer as Parameters<typeof verdictFor>[1], address, r.suppressed, capped.has(r.customer_id ?? ''), settings, now);
      if (v.action === 'skip') skips.push({ id: r.id, reason: v.reason, period: r.period });
      else if (v.action === 'defer') defers.push({ id: r.id, until: v.until, quiet: true, period: r.period });
      else ready.push({ id: r.id, period: r.period, channel: r.channel, templateId: r.template_id!, attempts: r.attempts, address: v.address, workspace, render: { ...customerScope(r.customer!, now), workspace: wsScope } });
    }
  }
  await repo.markSkipped(ctx.db, skips);
  await repo.requeue(ctx.db, defers);
  totals.skipped += skips.length;
  return ready;
}
