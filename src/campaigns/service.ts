import type { Deps } from '../deps';
import { AppError, notFound } from '../errors';
import { requestDispatch } from '../messages/dispatch';
import { campaignPeriod } from '../messages/partitions';
import { QUEUE_NAMES } from '../queues';
import { decideWinner } from '../results/ab';
import { segmentsAudienceQuery } from '../segments/service';
import { AWAITING_WINNER, fanoutBatch, FIRST_FANOUT_BATCH, nextFanoutBatch } from './fanout';
import * as repo from './repo';
import type { AbTestState, CreateCampaign, Variant } from './schema';

type Ctx = Pick<Deps, 'db' | 'queues' | 'clock' | 'logger'>;

function futureOr422(at: string, now: Date, path: string): Date {
  const d = new Date(at);
  if (d.getTime() <= now.getTime()) throw new AppError('unprocessable', 'the time must be in the future', [{ path, message: 'must be in the future' }]);
  return d;
}

export async function createCampaign(ctx: Ctx, workspaceId: string, body: CreateCampaign): Promise<repo.CampaignRow> {
  const now = ctx.clock.now();
  const scheduledAt = body.scheduledAt ? futureOr422(body.scheduledAt, now, 'scheduledAt') : null;
  // 404 for a segment of another workspace (or none).
  await segmentsAudienceQuery(ctx.db, workspaceId, body.segmentIds, body.excludeSegmentIds ?? [], now);
  const variants: Variant[] = (body.variants ?? []).map((v, i) => ({ key: String.fromCharCode(65 + i), templateId: v.templateId, weight: v.weight }));
  const templateIds = [body.templateId, ...variants.map((v) => v.templateId)];
  const channels = await repo.templateChannels(ctx.db, workspaceId, templateIds);
  const paths = [['templateId'], ...variants.map((_, i) => ['variants', i, 'templateId'])];
  templateIds.forEach((id, i) => {
    const ch = channels.get(id);
    if (!ch) throw notFound('template');
    if (ch !== body.channel) throw new AppError('unprocessable', `the template is for ${ch}, the campaign for ${body.channel}`, [{ path: paths[i]!.join('.'), message: `template channel is ${ch}` }]);
  });
  const ab: AbTestState | null = body.abTest ? { ...body.abTest, phase: 'pending' } : null;
  const row = await repo.insertCampaign(ctx.db, {
    workspace_id: workspaceId,
    name: body.name,
    channel: body.channel,
    template_id: body.templateId,
    segment_ids: body.segmentIds,
    exclude_segment_ids: body.excludeSegmentIds ?? [],
    holdout_percent: body.holdoutPercent ?? 0,
    variants,
    ab_test: ab,
    status: scheduledAt ? 'scheduled' : 'draft',
    scheduled_at: scheduledAt,
    created_at: now,
  });
  if (scheduledAt) await arm(ctx, row.id, scheduledAt);
  return row;
}

/** A delayed BullMQ job per schedule; Postgres stays the truth (the tick and boot re-arm from it). */
export async function arm(ctx: Ctx, id: string, at: Date): Promise<void> {
  const delay = Math.max(0, at.getTime() - ctx.clock.now().getTime());
  await ctx.queues.get(QUEUE_NAMES.campaigns).add('start', { id }, { jobId: `start-${id}-${at.getTime()}`, delay, removeOnComplete: true, removeOnFail: 100 });
}

export async function requestFanout(ctx: Ctx, id: string): Promise<void> {
  await ctx.queues.get(QUEUE_NAMES.campaigns).add('fanout', { id }, { removeOnComplete: true, removeOnFail: 100, attempts: 5, backoff: { type: 'exponential', delay: 1000 } });
}

export async function sendNow(ctx: Ctx, workspaceId: string, id: string): Promise<repo.CampaignRow> {
  const now = ctx.clock.now();
  const row = await repo.transition(ctx.db, workspaceId, id, ['draft', 'scheduled'], { status: 'sending', started_at: now, updated_at: now });
  if (!row) {
    await repo.requireCampaign(ctx.db, workspaceId, id);
    throw new AppError('conflict', 'the campaign was already sent or cancelled');
  }
  await requestFanout(ctx, id).catch((err) => ctx.logger.warn({ err: (err as Error).message, campaignId: id }, 'fan-out request failed; the tick will start it'));
  return row;
}

export async function schedule(ctx: Ctx, workspaceId: string, id: string, atRaw: string): Promise<repo.CampaignRow> {
  const now = ctx.clock.now();
  const at = futureOr422(atRaw, now, 'at');
  const row = await repo.transition(ctx.db, workspaceId, id, ['draft', 'scheduled'], { status: 'scheduled', scheduled_at: at, updated_at: now });
  if (!row) {
    await repo.requireCampaign(ctx.db, workspaceId, id);
    throw new AppError('conflict', 'only a draft or scheduled campaign can be scheduled');
  }
  await arm(ctx, id, at);
  return row;
}

export async function cancel(ctx: Ctx, workspaceId: string, id: string): Promise<repo.CampaignRow> {
  const now = ctx.clock.now();
  return ctx.db.transaction(async (trx) => {
    const row = await repo.transition(trx, workspaceId, id, ['draft', 'scheduled', 'sending'], { status: 'cancelled', finished_at: now, updated_at: now });
    if (!row) {
      await repo.requireCampaign(trx, workspaceId, id);
      throw new AppError('conflict', 'the campaign is already finished');
    }
    // Rows already claimed (sending) finish their provider call; queued ones never go out.
    await repo.cancelQueuedMessages(trx, id);
    return row;
  });
}

/** A scheduled campaign whose time has come starts (only if still scheduled and due). */
export async function startIfDue(ctx: Ctx, id: string): Promise<boolean> {
  const now = ctx.clock.now();
  const row = await ctx.db('campaigns').where({ id, status: 'scheduled' }).andWhere('scheduled_at', '<=', now).update({ status: 'sending', started_at: now, updated_at: now }).returning('id');
  if (row.length) await requestFanout(ctx, id);
  return row.length > 0;
}

/** Runs the whole fan-out of one campaign, batch by batch, requesting dispatch after each commit. */
export async function runFanout(ctx: Ctx, id: string): Promise<number> {
  let total = 0;
  // Requests run beside the next batch's transaction (each after its own commit); if one is lost,
  // the sweeper requests the rows (dispatch_requested_at lease).
  const requests: Array<Promise<void>> = [];
  try {
    for (let size = FIRST_FANOUT_BATCH; ; size = nextFanoutBatch(size)) {
      const r = await fanoutBatch(ctx.db, id, ctx.clock.now(), size);
      if (!r) return total;
      total += r.inserted;
      requests.push(requestDispatch(ctx.queues, r.due, undefined, [r.period]).catch(() => undefined));
      if (r.done) return total;
    }
  } finally {
    await Promise.all(requests);
  }
}

/** The A/B test share has had its time: pick the winner, release the rest of the audience to it. */
export async function decideAb(ctx: Ctx, id: string): Promise<string | null> {
  const now = ctx.clock.now();
  let period: string | undefined;
  const released = await ctx.db.transaction(async (trx) => {
    const c = await repo.lockCampaign(trx, id);
    if (!c || c.status !== 'sending' || c.ab_test?.phase !== 'testing') return null;
    period = campaignPeriod(c);
    const { rows } = await trx.raw(
      `SELECT variant, count(sent_at)::int AS sent, count(clicked_at)::int AS clicks, count(converted_at)::int AS conversions
         FROM messages WHERE campaign_id = ? AND variant IS NOT NULL GROUP BY variant`,
      [id],
    );
    const tallies = c.variants.map((v) => {
      const r = (rows as Array<{ variant: string; sent: number; clicks: number; conversions: number }>).find((x) => x.variant === v.key);
      return { variant: v.key, sent: r?.sent ?? 0, clicks: r?.clicks ?? 0, conversions: r?.conversions ?? 0 };
    });
    const decision = decideWinner(tallies, c.ab_test.metric);
    const winner = c.variants.find((v) => v.key === decision.winner) ?? c.variants[0]!;
    const ids = await trx('messages')
      .where({ campaign_id: id, status: 'queued' })
      .whereNull('variant')
      .andWhere('send_after', '=', AWAITING_WINNER)
      .update({ variant: winner.key, template_id: winner.templateId, send_after: null, dispatch_requested_at: now })
      .returning('id');
    const ab: AbTestState = { ...c.ab_test, phase: 'decided', decidedAt: now.toISOString(), winner: winner.key, results: decision.results };
    await trx('campaigns').where({ id }).update({ ab_test: JSON.stringify(ab), updated_at: now });
    return ids.map((r: { id: string }) => String(r.id));
  });
  if (!released) return null;
  await requestDispatch(ctx.queues, released, undefined, period ? [period] : undefined).catch(() => undefined);
  return released.length ? 'released' : 'decided';
}

/**
 * The campaign clock, run on a timer in every worker process (from Postgres, so it survives a
 * Redis restart): starts due scheduled campaigns, resumes unfinished fan-outs, decides due A/B
 * tests and marks finished campaigns sent.
 */
export async function tick(ctx: Ctx, opts: { resumeFanouts: boolean }): Promise<void> {
  const now = ctx.clock.now();
  const due = await ctx.db('campaigns').where({ status: 'scheduled' }).andWhere('scheduled_at', '<=', now).select('id');
  for (const r of due) await startIfDue(ctx, String(r.id));
  if (opts.resumeFanouts) for (const id of await repo.unfinishedFanouts(ctx.db)) await runFanout(ctx, id);
  for (const id of await repo.dueAbDecisions(ctx.db, now)) await decideAb(ctx, id);
  await repo.completeFinished(ctx.db, now);
}

/** At boot: every scheduled campaign is armed again from Postgres (Redis may have lost them). */
export async function rearmAll(ctx: Ctx): Promise<number> {
  const rows = await repo.scheduledCampaigns(ctx.db);
  for (const r of rows) await arm(ctx, r.id, r.scheduled_at ?? ctx.clock.now());
  return rows.length;
}
