import { randomUUID } from 'node:crypto';
import { channelsFromConfig } from '../../src/channels/config';
import { processDueEnrollments } from '../../src/automations/walker';
import { consumeTriggerFeeds, evaluateAutomation } from '../../src/automations/entry';
import { dispatchBatch, DispatchContext } from '../../src/messages/dispatch';
import { RateLimiter } from '../../src/messages/rate';
import { heartbeat } from '../../src/messages/repo';
import { ManualClock } from '../../src/clock';
import { startSmtpPeer, SmtpPeer } from './smtp-peer';
import { startTwilioStandin, TwilioStandin } from './twilio-standin';
import { startTestServer, TestServer } from './server';
import { newWorkspace } from './api';

export const DAY = 86400_000;
export const HOUR = 3600_000;

/**
 * The automation tests' world: the real app, a real SMTP peer and Twilio stand-in, and the
 * worker's steps (evaluate, walk, dispatch) called directly so that the manual clock decides
 * when anything happens.
 */
export async function startKit(start: string) {
  const clock = new ManualClock(new Date(start));
  const smtp: SmtpPeer = await startSmtpPeer();
  const twilio: TwilioStandin = await startTwilioStandin();
  const server: TestServer = await startTestServer({ clock, env: { SMTP_URL: smtp.url, TWILIO_API_URL: twilio.url } });
  const deps = server.deps;
  const ctx: DispatchContext = {
    db: deps.db,
    clock,
    config: deps.config,
    logger: deps.logger,
    channels: channelsFromConfig(deps.config),
    rate: new RateLimiter(deps.redis, deps.queues.prefix, { email: 1000, sms: 1000 }),
    workerId: randomUUID(),
    parallel: 4,
  };
  await heartbeat(deps.db, ctx.workerId);
  const walkDeps = { db: deps.db, clock, logger: deps.logger };
  return {
    clock,
    smtp,
    twilio,
    server,
    deps,
    walk: (automationId?: string) => processDueEnrollments(walkDeps, { automationId }),
    evaluate: (automationId: string) => evaluateAutomation(deps, automationId),
    // Test files run side by side on one database, each with its own manual clock: the feed's
    // guard against rows from a later clock ("too young") is turned off with a negative lag.
    feeds: () => consumeTriggerFeeds(deps),
    /** Sends every due queued message of the workspace, as a dispatch worker would. */
    async dispatch(workspaceId: string) {
      const ids = (await deps.db('messages').where({ workspace_id: workspaceId, status: 'queued' }).pluck('id')).map(String);
      return ids.length ? dispatchBatch(ctx, ids) : { sent: 0, skipped: 0, failed: 0 };
    },
    async close() {
      await Promise.allSettled([ctx.channels.email.close(), ctx.channels.sms.close()]);
      await server.close();
      await smtp.close();
      await twilio.close();
    },
  };
}
export type Kit = Awaited<ReturnType<typeof startKit>>;

/** A workspace set up to send: addresses, a From, quiet hours and cap as given. */
export async function shop(kit: Kit, settings: Record<string, unknown> = {}) {
  const ws = await newWorkspace(kit.server.url, 'automation shop', { timezone: 'UTC' });
  const s = await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', smsFrom: '+15005550006', postalAddress: '1 Main St, Springfield', ...settings });
  if (s.status !== 200) throw new Error(`settings: ${s.status} ${JSON.stringify(s.body)}`);
  return ws;
}

type Api = Awaited<ReturnType<typeof newWorkspace>>['api'];

/** A customer with three purchases 20 days apart, the last `lastDaysAgo` days ago (fading when > 40). */
export async function customerWithHistory(kit: Kit, api: Api, externalId: string, lastDaysAgo: number, extra: Record<string, unknown> = {}) {
  const phone = `+1415555${String(Math.floor(Math.random() * 10000)).padStart(4, '0')}`;
  const c = await api.put(`/v1/customers/${externalId}`, { email: `${externalId}@example.com`, phone, emailConsent: 'subscribed', smsConsent: 'subscribed', firstName: 'Sam', ...extra });
  if (c.status !== 201) throw new Error(`customer: ${c.status} ${JSON.stringify(c.body)}`);
  for (const [i, ago] of [lastDaysAgo + 40, lastDaysAgo + 20, lastDaysAgo].entries()) {
    const at = new Date(kit.clock.now().getTime() - ago * DAY).toISOString();
    const p = await api.post('/v1/purchases', { orderId: `${externalId}-${i}`, customer: { externalId }, occurredAt: at, total: 40 });
    if (p.status !== 201) throw new Error(`purchase: ${p.status} ${JSON.stringify(p.body)}`);
  }
  return { externalId, email: `${externalId}@example.com`, phone };
}

/** A segment through the API. */
export async function segment(_kit: Kit, api: Api, _workspaceId: string, definition: unknown): Promise<string> {
  const r = await api.post('/v1/segments', { name: 'seg', definition });
  if (r.status !== 201) throw new Error(`segment: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Templates: the starter ones, by key. */
export async function starter(api: Api): Promise<Record<string, string>> {
  const r = await api.post('/v1/templates/starter', {});
  if (r.status !== 201) throw new Error(`starter: ${r.status} ${JSON.stringify(r.body)}`);
  return Object.fromEntries(r.body.data.map((t: { key: string; id: string }) => [t.key, t.id]));
}

export async function messagesOf(kit: Kit, automationId: string) {
  return kit.deps.db('messages').where({ automation_id: automationId }).orderBy('id').select('id', 'customer_id', 'channel', 'status', 'skip_reason', 'step_index', 'send_after', 'enrollment_id');
}
