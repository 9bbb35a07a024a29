import type { Channel, OutgoingEmail, OutgoingSms } from '../channels/types';
import { ChannelError } from '../channels/types';
import type { Clock } from '../clock';
import type { Config } from '../config';
import type { Db } from '../db';
import type { Logger } from '../logger';
import { publicLinks } from '../public/tokens';
import { QUEUE_NAMES, Queues } from '../queues';
import { suppress } from '../suppressions/repo';
import { buildRenderContexts, loadTemplate, renderMessage, TemplateRow } from '../templates/render';
import { getWorkspace, Workspace } from '../workspaces/repo';
import { recordMessageEvents, MessageEvent } from './events';
import type { RateLimiter } from './rate';
import * as repo from './repo';
import { evaluateRules } from './rules';

/**
 * Message ids per dispatch job: a whole number of claim chunks (the worker's parallelism, 32),
 * and small enough that a crash leaves few rows 'unknown'.
 */
export const DISPATCH_BATCH = 64;
export const MAX_ATTEMPTS = 5;

/** Enqueues dispatch jobs for these message ids (ids only in Redis); `at` delays them. */
export async function requestDispatch(queues: Queues, messageIds: string[], at?: Date): Promise<void> {
  if (!messageIds.length) return;
  const delay = at ? Math.max(0, at.getTime() - Date.now()) : 0;
  const q = queues.get(QUEUE_NAMES.dispatch);
  const jobs = [];
  for (let i = 0; i < messageIds.length; i += DISPATCH_BATCH) {
    jobs.push({ name: 'dispatch', data: { ids: messageIds.slice(i, i + DISPATCH_BATCH) }, opts: { delay, removeOnComplete: true, removeOnFail: 1000, attempts: 3, backoff: { type: 'exponential', delay: 1000 } } });
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
}

type Outcome = { id: string; channel: 'email' | 'sms'; workspaceId: string; address: string } & (
  | { ok: true; providerId: string }
  | { ok: false; error: ChannelError; attempts: number }
);

/**
 * One dispatch job: claim (queued -> sending), re-check the rules, render, send, record.
 * Rows this job does not claim were taken by another worker, cancelled, or are not due: skipped.
 */
export async function dispatchBatch(ctx: DispatchContext, ids: string[]): Promise<{ sent: number; skipped: number; failed: number }> {
  const totals = { sent: 0, skipped: 0, failed: 0 };
  // Claimed rows become 'unknown' if this process dies, so only as many are claimed at a time as
  // go out together (one chunk = the parallelism). Workspaces and templates are read once per job.
  const chunk = Math.max(1, ctx.parallel);
  const cache: JobCache = { workspaces: new Map(), templates: new Map() };
  for (let i = 0; i < ids.length; i += chunk) {
    const r = await dispatchChunk(ctx, ids.slice(i, i + chunk), cache);
    totals.sent += r.sent;
    totals.skipped += r.skipped;
    totals.failed += r.failed;
  }
  return totals;
}

interface JobCache {
  workspaces: Map<string, Promise<Workspace>>;
  templates: Map<string, Promise<TemplateRow>>;
}

function cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let hit = map.get(key);
  if (!hit) {
    hit = load();
    hit.catch(() => map.delete(key));
    map.set(key, hit);
  }
  return hit;
}

async function dispatchChunk(ctx: DispatchContext, ids: string[], cache: JobCache): Promise<{ sent: number; skipped: number; failed: number }> {
  const now = ctx.clock.now();
  // One round trip claims the chunk (queued -> sending, atomically per row); the rate tokens for
  // what was claimed are taken right after, so no separate count query is needed before it.
  const claimed = await repo.claim(ctx.db, ids, ctx.workerId, now);
  const perChannel = new Map<string, number>();
  for (const m of claimed) perChannel.set(m.channel, (perChannel.get(m.channel) ?? 0) + 1);
  for (const [channel, n] of perChannel) await ctx.rate.take(channel, n);
  const byWorkspace = new Map<string, repo.ClaimedMessage[]>();
  for (const m of claimed) byWorkspace.set(m.workspace_id, [...(byWorkspace.get(m.workspace_id) ?? []), m]);
  const totals = { sent: 0, skipped: 0, failed: 0 };
  for (const [workspaceId, rows] of byWorkspace) {
    const workspace = await cached(cache.workspaces, workspaceId, () => getWorkspace(ctx.db, workspaceId));
    const verdicts = await evaluateRules(
      ctx.db,
      workspace,
      rows.map((r) => ({ key: r.id, customerId: r.customer_id, channel: r.channel, address: r.address })),
      now,
      { planned: false, excludeMessageIds: claimed.map((m) => m.id) },
    );
    const skips: Array<{ id: string; reason: string }> = [];
    const defers: Array<{ id: string; until: Date; quiet: boolean }> = [];
    const toSend: Array<repo.ClaimedMessage & { address: string }> = [];
    for (const r of rows) {
      const v = verdicts.get(r.id)!;
      if (v.action === 'skip') skips.push({ id: r.id, reason: v.reason });
      else if (v.action === 'defer') defers.push({ id: r.id, until: v.until, quiet: true });
      else toSend.push({ ...r, address: v.address });
    }
    await repo.markSkipped(ctx.db, skips);
    await repo.requeue(ctx.db, defers);
    totals.skipped += skips.length;
    const outcomes = await sendAll(ctx, workspace, toSend, now, cache);
    const done = await record(ctx, outcomes);
    totals.sent += done.sent;
    totals.failed += done.failed;
  }
  return totals;
}

async function sendAll(ctx: DispatchContext, workspace: Workspace, rows: Array<repo.ClaimedMessage & { address: string }>, now: Date, cache: JobCache): Promise<Outcome[]> {
  if (!rows.length) return [];
  const contexts = await buildRenderContexts(ctx.db, workspace.id, rows.map((r) => r.customer_id!), now);
  const templateOf = (id: string) => cached(cache.templates, `${workspace.id}:${id}`, () => loadTemplate(ctx.db, workspace.id, id));
  const s = workspace.settings;
  const fromEmail = s.fromEmail ?? `no-reply@${new URL(ctx.config.PUBLIC_URL).hostname}`;
  const from = s.fromName ? `"${s.fromName.replace(/["\\\r\n]/g, '')}" <${fromEmail}>` : fromEmail;
  const statusCallback = `${ctx.config.PUBLIC_URL.replace(/\/+$/, '')}/webhooks/twilio/status`;

  return pMap(rows, ctx.parallel, async (r): Promise<Outcome> => {
    const base = { id: r.id, channel: r.channel, workspaceId: workspace.id, address: r.address };
    try {
      const template = await templateOf(r.template_id!);
      const renderCtx = contexts.get(r.customer_id!);
      if (!renderCtx) throw new ChannelError('customer no longer exists', true, false);
      const out = await renderMessage(template, renderCtx, publicLinks(ctx.config, r.id, now));
      if (out.channel === 'email') {
        if (r.channel !== 'email') throw new ChannelError('template channel does not match the message', true, false);
        const sent = await ctx.channels.email.send({ messageId: r.id, to: r.address, from, replyTo: s.replyTo ?? undefined, subject: out.subject, html: out.html, text: out.text, headers: out.headers });
        return { ...base, ok: true, providerId: sent.providerId };
      }
      if (r.channel !== 'sms') throw new ChannelError('template channel does not match the message', true, false);
      if (!s.smsFrom) throw new ChannelError('workspace has no smsFrom setting', true, false);
      const sent = await ctx.channels.sms.send({ messageId: r.id, to: r.address, from: s.smsFrom, body: out.text, statusCallback });
      return { ...base, ok: true, providerId: sent.providerId };
    } catch (err) {
      const error = err instanceof ChannelError ? err : new ChannelError(`could not render: ${(err as Error).message}`.slice(0, 500), true, false);
      return { ...base, ok: false, error, attempts: r.attempts };
    }
  });
}

/** Outcomes in one transaction with their events; permanent refusals may suppress the address. */
async function record(ctx: DispatchContext, outcomes: Outcome[]): Promise<{ sent: number; failed: number }> {
  if (!outcomes.length) return { sent: 0, failed: 0 };
  const now = ctx.clock.now();
  const ok = outcomes.filter((o): o is Outcome & { ok: true } => o.ok);
  const bad = outcomes.filter((o): o is Outcome & { ok: false } => !o.ok);
  const permanent = bad.filter((o) => o.error.permanent || o.attempts >= MAX_ATTEMPTS);
  const transient = bad.filter((o) => !permanent.includes(o));
  const sentItems = ok.map((o) => ({ id: o.id, channel: o.channel, providerId: o.providerId }));
  // The usual chunk (all accepted): markSent writes the rows and their events in one statement.
  if (!bad.length) return { sent: (await repo.markSent(ctx.db, sentItems, now)).length, failed: 0 };
  return ctx.db.transaction(async (trx) => {
    const sentIds = await repo.markSent(trx, sentItems, now);
    const failedIds = new Set(await repo.markFailed(trx, permanent.map((o) => ({ id: o.id, error: o.error.message })), now));
    await repo.requeue(trx, transient.map((o) => ({ id: o.id, until: new Date(now.getTime() + 15_000 * 2 ** o.attempts), quiet: false, error: o.error.message })));
    const events: MessageEvent[] = [];
    for (const o of permanent) {
      if (!failedIds.has(o.id)) continue;
      events.push({ workspaceId: o.workspaceId, messageId: o.id, type: 'failed', occurredAt: now, data: { code: o.error.code ?? null } });
      if (o.error.suppress) {
        const reason = o.channel === 'email' ? 'bounce' : o.error.code === '21610' ? 'sms_stop' : 'invalid_number';
        await suppress(trx, o.workspaceId, o.channel, o.address, reason);
      }
    }
    await recordMessageEvents(trx, events);
    if (bad.length) ctx.logger.warn({ failed: permanent.length, retrying: transient.length, codes: [...new Set(bad.map((o) => o.error.code))] }, 'dispatch: provider refusals');
    return { sent: sentIds.length, failed: failedIds.size };
  });
}

async function pMap<T, R>(items: T[], parallel: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, lane));
  return out;
}
