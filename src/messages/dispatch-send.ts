import { SENDER_LOST } from '../channels/threaded';
import { ANSWER_LOST, ChannelError } from '../channels/types';
import { publicLinks, twilioStatusCallbackUrl } from '../public/tokens';
import { suppress } from '../suppressions/repo';
import { loadTemplate, renderMessage, RenderContext, TemplateRow } from '../templates/render';
import type { Workspace } from '../workspaces/repo';
import type { DispatchContext } from './dispatch';
import { recordMessageEvents, MessageEvent } from './events';
import * as repo from './repo';

export const MAX_ATTEMPTS = 5;

/** A claimed message that passed the rules: where it goes, and what its template sees. */
export interface ReadyMessage {
  id: string;
  /** The row's partition key, carried to its outcome's write (migrations/0022). */
  period?: string;
  channel: 'email' | 'sms';
  templateId: string;
  attempts: number;
  address: string;
  workspace: Workspace;
  render: RenderContext;
}

export type Outcome = { id: string; period?: string; channel: 'email' | 'sms'; workspaceId: string; address: string } & (
  | { ok: true; providerId: string }
  | { ok: false; error: ChannelError; attempts: number }
);

/** Read once per job: workspaces and templates do not change under a running job. */
export interface JobCache {
  workspaces: Map<string, Promise<Workspace>>;
  templates: Map<string, Promise<TemplateRow>>;
}

export function cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
  let hit = map.get(key);
  if (!hit) {
    hit = load();
    hit.catch(() => map.delete(key));
    map.set(key, hit);
  }
  return hit;
}

/** Render and hand one message to its provider; every failure becomes an Outcome, never a throw. */
export async function sendOne(ctx: DispatchContext, m: ReadyMessage, cache: JobCache, now: Date): Promise<Outcome> {
  const base = { id: m.id, period: m.period, channel: m.channel, workspaceId: m.workspace.id, address: m.address };
  const s = m.workspace.settings;
  try {
    const template = await cached(cache.templates, `${m.workspace.id}:${m.templateId}`, () => loadTemplate(ctx.db, m.workspace.id, m.templateId));
    const out = await renderMessage(template, m.render, publicLinks(ctx.config, m.id, now));
    if (out.channel !== m.channel) throw new ChannelError('template channel does not match the message', true, false);
    if (out.channel === 'email') {
      const fromEmail = s.fromEmail ?? `no-reply@${new URL(ctx.config.PUBLIC_URL).hostname}`;
      const from = s.fromName ? `"${s.fromName.replace(/["\\\r\n]/g, '')}" <${fromEmail}>` : fromEmail;
      const sent = await ctx.channels.email.send({ messageId: m.id, to: m.address, from, replyTo: s.replyTo ?? undefined, subject: out.subject, html: out.html, text: out.text, headers: out.headers });
      return { ...base, ok: true, providerId: sent.providerId };
    }
    if (!s.smsFrom) throw new ChannelError('workspace has no smsFrom setting', true, false);
    // The message id rides in the callback URL (signed by Twilio with it): a callback that overtakes
    // markSent, or one for an 'unknown' send whose answer was lost, still finds its message.
    const statusCallback = twilioStatusCallbackUrl(ctx.config, m.workspace.id, m.id);
    const sent = await ctx.channels.sms.send({ messageId: m.id, to: m.address, from: s.smsFrom, body: out.text, statusCallback });
    return { ...base, ok: true, providerId: sent.providerId };
  } catch (err) {
    const error = err instanceof ChannelError ? err : new ChannelError(`could not render: ${(err as Error).message}`.slice(0, 500), true, false);
    return { ...base, ok: false, error, attempts: m.attempts };
  }
}

/** Outcomes in one transaction with their events; permanent refusals may suppress the address. */
export async function record(ctx: DispatchContext, outcomes: Outcome[]): Promise<{ sent: number; failed: number }> {
  if (!outcomes.length) return { sent: 0, failed: 0 };
  const now = ctx.clock.now();
  const ok = outcomes.filter((o): o is Outcome & { ok: true } => o.ok);
  const failedCalls = outcomes.filter((o): o is Outcome & { ok: false } => !o.ok);
  // A call whose answer was lost (with the sender thread, or on the wire after it was written) may have reached the provider: 'unknown'.
  const isLost = (o: Outcome & { ok: false }) => o.error.code === SENDER_LOST || o.error.code === ANSWER_LOST;
  const lost = failedCalls.filter(isLost);
  const bad = failedCalls.filter((o) => !isLost(o));
  const permanent = bad.filter((o) => o.error.permanent || o.attempts >= MAX_ATTEMPTS);
  const transient = bad.filter((o) => !permanent.includes(o));
  const sentItems = ok.map((o) => ({ id: o.id, channel: o.channel, providerId: o.providerId, period: o.period }));
  // The usual batch (all accepted): markSent writes the rows and their events in one statement.
  if (!failedCalls.length) return { sent: (await repo.markSent(ctx.db, sentItems, now)).length, failed: 0 };
  return ctx.db.transaction(async (trx) => {
    const sentIds = await repo.markSent(trx, sentItems, now);
    await repo.markUnknown(trx, lost.map((o) => ({ id: o.id, error: o.error.message, period: o.period })));
    const failedIds = new Set(await repo.markFailed(trx, permanent.map((o) => ({ id: o.id, error: o.error.message, period: o.period })), now));
    await repo.requeue(trx, transient.map((o) => ({ id: o.id, until: new Date(now.getTime() + 15_000 * 2 ** o.attempts), quiet: false, error: o.error.message, period: o.period })));
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
    ctx.logger.warn({ failed: permanent.length, retrying: transient.length, unknown: lost.length, codes: [...new Set(bad.map((o) => o.error.code))] }, 'dispatch: provider refusals');
    return { sent: sentIds.length, failed: failedIds.size };
  });
}
