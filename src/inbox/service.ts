import { randomUUID } from 'node:crypto';
import { RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import type { RedisClient as Redis } from '../redis';
import { requireSms, twilioSpec } from '../channels/config';
import { dkimFromConfig } from '../channels/smtp';
import { createProviderChannels } from '../channels/select';
import { ChannelError } from '../channels/types';
import type { Config } from '../config';
import type { Db } from '../db';
import { AppError, notFound } from '../errors';
import { buildRenderContext, loadTemplate, renderMessage, TemplateRow } from '../templates/render';
import { customerIdByExternalId } from '../templates/repo';
import { getWorkspace } from '../workspaces/repo';
import { isPhone, TestSendBody } from './schema';

export interface TestSendDeps {
  db: Db;
  redis: Redis;
  config: Config;
  clock: { now(): Date };
  queuePrefix: string;
}

export interface TestSendResult {
  to: string;
  channel: 'email' | 'sms';
  status: 'sent' | 'failed';
  error: string | null;
}

export const TEST_PREFIX = '[Test] ';

const limiters = new WeakMap<Redis, Map<string, RateLimiterRedis>>();

/**
 * Test sends per workspace and hour, in Redis so that it holds across API processes: one key per
 * workspace (a single-key script, so a Redis Cluster is fine), counting each address as a send.
 */
function limiterFor(deps: TestSendDeps): RateLimiterRedis {
  let byPrefix = limiters.get(deps.redis);
  if (!byPrefix) limiters.set(deps.redis, (byPrefix = new Map()));
  const key = `${deps.queuePrefix}:${deps.config.TEST_SENDS_PER_HOUR}`;
  let l = byPrefix.get(key);
  if (!l) {
    l = new RateLimiterRedis({ storeClient: deps.redis, keyPrefix: `${deps.queuePrefix}:test-sends`, points: deps.config.TEST_SENDS_PER_HOUR, duration: 3600 });
    byPrefix.set(key, l);
  }
  return l;
}

async function takeAllowance(deps: TestSendDeps, workspaceId: string, n: number): Promise<() => Promise<void>> {
  const limiter = limiterFor(deps);
  try {
    await limiter.consume(workspaceId, n);
  } catch (err) {
    if (!(err instanceof RateLimiterRes)) throw err;
    // A refused request sends nothing, so it uses none of the hour's allowance.
    await limiter.reward(workspaceId, n).catch(() => undefined);
    const retry = Math.max(1, Math.ceil(err.msBeforeNext / 1000));
    throw Object.assign(new AppError('rate_limited', `at most ${deps.config.TEST_SENDS_PER_HOUR} test sends per workspace an hour; try again in ${retry} s`), { retryAfter: retry });
  }
  return async () => void (await limiter.reward(workspaceId, n).catch(() => undefined));
}

/**
 * A template rendered as one customer (default: sample values) and sent now to 1-5 addresses,
 * subject prefixed "[Test] ". No message row is written, so it counts in no campaign, frequency
 * cap or report; links are not tracked and the unsubscribe link is a placeholder, as nobody on a
 * test list is a subscriber. Goes through the configured provider (or the built-in inbox).
 */
export async function sendTest(deps: TestSendDeps, workspaceId: string, template: TemplateRow, body: TestSendBody): Promise<TestSendResult[]> {
  const channel = template.channel;
  body.to.forEach((to, i) => {
    if ((channel === 'sms') !== isPhone(to)) {
      const message = channel === 'sms' ? 'an SMS test goes to an E.164 phone number' : 'an email test goes to an email address';
      throw new AppError('unprocessable', `to.${i}: ${message}`, [{ path: `to.${i}`, message }]);
    }
  });
  if (channel === 'sms') requireSms(deps.config, 'to');
  const workspace = await getWorkspace(deps.db, workspaceId);
  const s = workspace.settings;
  if (channel === 'sms' && !s.smsFrom) throw new AppError('unprocessable', 'set smsFrom in the settings before sending SMS', [{ path: 'smsFrom', message: 'not set' }]);
  let customerId: string | null = null;
  if (body.customerExternalId) {
    customerId = (await customerIdByExternalId(deps.db, workspaceId, body.customerExternalId)) ?? null;
    if (!customerId) throw notFound('customer');
  }
  const now = deps.clock.now();
  const ctx = await buildRenderContext(deps.db, workspaceId, customerId, now);
  const out = await renderMessage(template, ctx, { unsubscribeUrl: `${deps.config.PUBLIC_URL.replace(/\/+$/, '')}/u/test` });

  const giveBack = await takeAllowance(deps, workspaceId, body.to.length);
  const channels = createProviderChannels(
    { smtp: { url: deps.config.SMTP_URL, pool: false, dkim: dkimFromConfig(deps.config) }, twilio: twilioSpec(deps.config) },
    { db: deps.db },
  );
  const results: TestSendResult[] = [];
  try {
    for (const to of body.to) {
      const messageId = `test-${randomUUID()}`;
      try {
        if (out.channel === 'email') {
          const fromEmail = s.fromEmail ?? `no-reply@${new URL(deps.config.PUBLIC_URL).hostname}`;
          const from = s.fromName ? `"${s.fromName.replace(/["\\\r\n]/g, '')}" <${fromEmail}>` : fromEmail;
          await channels.email.send({ messageId, workspaceId, to, from, replyTo: s.replyTo ?? undefined, subject: TEST_PREFIX + out.subject, html: out.html, text: out.text, headers: { ...out.headers, 'X-Hark-Test': 'true' } });
        } else {
          await channels.sms.send({ messageId, workspaceId, to, from: s.smsFrom!, body: TEST_PREFIX + out.text });
        }
        results.push({ to, channel, status: 'sent', error: null });
      } catch (err) {
        results.push({ to, channel, status: 'failed', error: err instanceof ChannelError ? err.message : 'provider call failed' });
      }
    }
  } finally {
    await Promise.allSettled([channels.email.close(), channels.sms.close()]);
  }
  // Nothing left: the hour's allowance is for sends, not for a mail server that is down.
  if (results.every((r) => r.status === 'failed')) await giveBack();
  return results;
}

export async function templateForTest(db: Db, workspaceId: string, templateId: string): Promise<TemplateRow> {
  return loadTemplate(db, workspaceId, templateId);
}
