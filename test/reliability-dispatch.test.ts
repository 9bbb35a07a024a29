import { randomUUID } from 'node:crypto';
import twilio from 'twilio';
import { createTwilioChannel } from '../src/channels/twilio';
import { ANSWER_LOST } from '../src/channels/types';
import { dispatchBatch, DispatchContext } from '../src/messages/dispatch';
import { RateLimiter } from '../src/messages/rate';
import { heartbeat } from '../src/messages/repo';
import { isSuppressed } from '../src/suppressions/repo';
import { channelsFromConfig } from '../src/channels/config';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { StandinMessage, startTwilioStandin, TwilioStandin } from './helpers/twilio-standin';

/**
 * Dispatch's reliability promises against the real SMTP server, the Twilio stand-in, Postgres and
 * Redis: a claim is never stranded, an answer lost after hand-over is 'unknown' (never resent),
 * a failure before hand-over is retried, and SMS status callbacks find their message by the id in
 * their URL even when they overtake dispatch's own write.
 */
jest.setTimeout(60_000);

const SMS_FROM = '+15005550006';
const STOP_NUMBER = '+15125550161';
const LOST_NUMBER = '+15125550162';
let server: TestServer;
let smtp: SmtpPeer;
let standin: TwilioStandin;
const contexts: DispatchContext[] = [];

/** What Twilio does for an SMS whose recipient had texted STOP: the callback says undelivered/21610, here before the API's answer. */
async function earlyCallback(m: StandinMessage) {
  if (m.To !== STOP_NUMBER || !m.StatusCallback) return;
  await postCallback(m.StatusCallback, { MessageSid: m.sid, MessageStatus: 'undelivered', ErrorCode: '21610' });
}

async function postCallback(callbackUrl: string, params: Record<string, string>) {
  const config = server.deps.config;
  const signature = twilio.getExpectedTwilioSignature(config.TWILIO_AUTH_TOKEN!, callbackUrl, params);
  const path = callbackUrl.slice(config.PUBLIC_URL.replace(/\/+$/, '').length);
  const res = await fetch(server.url + path, { method: 'POST', body: new URLSearchParams(params), headers: { 'x-twilio-signature': signature } });
  expect(res.status).toBe(204);
}

beforeAll(async () => {
  smtp = await startSmtpPeer({ dropAfterData: (to) => to.startsWith('drop-after-data'), dropAtRcpt: (to) => to.startsWith('drop-at-rcpt') });
  standin = await startTwilioStandin({ failAfterAccept: { [LOST_NUMBER]: 500 }, beforeAnswer: earlyCallback });
  server = await startTestServer({ env: { SMTP_URL: smtp.url, TWILIO_API_URL: standin.url } });
});
afterAll(async () => {
  for (const c of contexts) await Promise.allSettled([c.channels.email.close(), c.channels.sms.close()]);
  await server.close();
  await smtp.close();
  await standin.close();
});

async function dispatchContext(over: Partial<DispatchContext> = {}): Promise<DispatchContext> {
  const d = server.deps;
  const ctx: DispatchContext = {
    db: d.db,
    clock: d.clock,
    config: d.config,
    logger: d.logger,
    channels: channelsFromConfig(d.config),
    rate: new RateLimiter(d.redis, d.queues.prefix, { email: 1000, sms: 1000 }),
    workerId: randomUUID(),
    parallel: 4,
    ...over,
  };
  await heartbeat(d.db, ctx.workerId);
  contexts.push(ctx);
  return ctx;
}

/** A workspace with one template per channel and a queued message for each address. */
async function queued(channel: 'email' | 'sms', addresses: string[]) {
  const ws = await newWorkspace(server.url, 'reliable shop', { timezone: 'UTC' });
  expect((await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', smsFrom: SMS_FROM, postalAddress: '1 Main St' })).status).toBe(200);
  const tpl = (await ws.api.post('/v1/templates', channel === 'email' ? { name: 't', channel, subject: 'Hi', body: '<p>Hello</p>' } : { name: 't', channel, body: 'Sale today' })).body.id;
  const ids: string[] = [];
  for (const [i, address] of addresses.entries()) {
    const fields = channel === 'email' ? { email: address, emailConsent: 'subscribed' } : { phone: address, smsConsent: 'subscribed' };
    expect((await ws.api.put(`/v1/customers/r${i}`, fields)).status).toBe(201);
    const c = await server.deps.db('customers').where({ workspace_id: ws.id, external_id: `r${i}` }).first('id');
    const [m] = await server.deps.db('messages').insert({ workspace_id: ws.id, customer_id: c.id, channel, template_id: tpl, address, status: 'queued' }).returning('id');
    ids.push(String(m.id));
  }
  return { ws, ids };
}

const statusOf = async (id: string) => (await server.deps.db('messages').where({ id }).first('status')).status as string;

describe('stranded claims', () => {
  test('when the rate limiter throws after a chunk was claimed, then the job fails and its claimed rows are queued again, not left sending', async () => {
    const { ids } = await queued('email', ['a@stranded.example', 'b@stranded.example', 'c@stranded.example']);
    // A real Redis connection that is gone: the limiter's MULTI throws after the claim.
    const gone = server.deps.redis.duplicate();
    await gone.quit();
    const ctx = await dispatchContext({ rate: new RateLimiter(gone, server.deps.queues.prefix, { email: 1000 }) });
    await expect(dispatchBatch(ctx, ids)).rejects.toThrow();
    for (const id of ids) expect(await statusOf(id)).toBe('queued');
    // The next job sends them.
    const ok = await dispatchContext();
    expect((await dispatchBatch(ok, ids)).sent).toBe(3);
    expect(smtp.received.filter((m) => m.envelopeTo[0]!.endsWith('@stranded.example'))).toHaveLength(3);
  });
});

describe('ambiguous failures', () => {
  test('when the SMTP connection drops after the message data was sent, then the message is unknown and a second dispatch does not resend it', async () => {
    const { ids } = await queued('email', ['drop-after-data@ambiguous.example']);
    const ctx = await dispatchContext();
    await dispatchBatch(ctx, ids);
    expect(await statusOf(ids[0]!)).toBe('unknown');
    await dispatchBatch(ctx, ids);
    expect(smtp.received.filter((m) => m.envelopeTo.includes('drop-after-data@ambiguous.example'))).toHaveLength(1);
  });

  test('when the SMTP connection drops before the message was handed over (at RCPT), then the message is queued for a retry', async () => {
    const { ids } = await queued('email', ['drop-at-rcpt@ambiguous.example']);
    await dispatchBatch(await dispatchContext(), ids);
    expect(await statusOf(ids[0]!)).toBe('queued');
  });

  test('when Twilio answers 500 after accepting the SMS, then the message is unknown, not resent, and a later delivered callback resolves it', async () => {
    const { ids } = await queued('sms', [LOST_NUMBER]);
    const ctx = await dispatchContext();
    await dispatchBatch(ctx, ids);
    expect(await statusOf(ids[0]!)).toBe('unknown');
    await dispatchBatch(ctx, ids);
    const got = standin.messages.filter((m) => m.To === LOST_NUMBER);
    expect(got).toHaveLength(1);
    await postCallback(got[0]!.StatusCallback!, { MessageSid: got[0]!.sid, MessageStatus: 'delivered' });
    const row = await server.deps.db('messages').where({ id: ids[0] }).first('status', 'provider_id');
    expect(row).toEqual({ status: 'delivered', provider_id: got[0]!.sid });
  });
});

describe("the twilio library's own HTTP client (HTTP_PROXY or TWILIO_CA_BUNDLE set)", () => {
  const channel = (apiUrl: string) => createTwilioChannel({ accountSid: 'AC00000000000000000000000000000000', authToken: 'x', apiUrl, httpClient: 'library', timeoutMs: 300 });
  const failure = (p: Promise<unknown>) => p.then(() => null, (e: unknown) => e as { permanent: boolean; code?: string });

  test('when a written request gets no answer in time, then the error is ANSWER_LOST (never resent), not a retry', async () => {
    const slow = await startTwilioStandin({ holdFor: ['+15125550163'] });
    const ch = channel(slow.url);
    const err = await failure(ch.send({ messageId: '1', to: '+15125550163', from: SMS_FROM, body: 'x' }));
    await ch.close();
    await slow.close();
    expect(slow.held).toEqual(['+15125550163']);
    expect(err).toMatchObject({ permanent: true, code: ANSWER_LOST });
  });

  test('when nothing listens (the request never left), then the error is retryable', async () => {
    const ch = channel('http://127.0.0.1:9');
    const err = await failure(ch.send({ messageId: '2', to: '+15125550164', from: SMS_FROM, body: 'x' }));
    await ch.close();
    expect(err).toMatchObject({ permanent: false });
    expect(err!.code).not.toBe(ANSWER_LOST);
  });
});

describe('early SMS status callbacks', () => {
  test('when a 21610 callback arrives before dispatch stored the provider id, then the message fails and the number is suppressed', async () => {
    const { ws, ids } = await queued('sms', [STOP_NUMBER]);
    await dispatchBatch(await dispatchContext(), ids);
    const m = standin.messages.find((x) => x.To === STOP_NUMBER)!;
    expect(m.StatusCallback).toContain(`m=${ids[0]}`);
    const row = await server.deps.db('messages').where({ id: ids[0] }).first('status', 'provider_id');
    expect(row).toEqual({ status: 'failed', provider_id: m.sid });
    expect(await isSuppressed(server.deps.db, ws.id, 'sms', STOP_NUMBER)).toBe(true);
  });
});
