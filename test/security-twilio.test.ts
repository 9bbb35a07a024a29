import twilio from 'twilio';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { isSuppressed } from '../src/suppressions/repo';

/** Issue 15, security item 1: an inbound SMS is applied once per MessageSid, however often it is delivered. */
const PUBLIC_URL = 'https://hark.example.com';
const TWILIO_TOKEN = 'twilio-auth-token-for-replay-tests';
const SMS_FROM = '+15125550166';
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ env: { PUBLIC_URL, TWILIO_AUTH_TOKEN: TWILIO_TOKEN } });
});
afterAll(async () => srv.close());

const inbound = (params: Record<string, string>) =>
  fetch(`${srv.url}/webhooks/twilio/inbound`, {
    method: 'POST',
    body: new URLSearchParams(params),
    headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TWILIO_TOKEN, `${PUBLIC_URL}/webhooks/twilio/inbound`, params) },
  });

test('when a STOP is replayed (same MessageSid, validly signed) after the person texted START, then they stay opted in', async () => {
  const ws = await newWorkspace(srv.url, 'replay');
  expect((await ws.api.patch('/v1/settings', { smsFrom: SMS_FROM })).status).toBe(200);
  const phone = `+1512555${String(Math.floor(Math.random() * 9000) + 1000)}`;
  await ws.api.put('/v1/customers/r-1', { phone, smsConsent: 'subscribed' });
  const sid = (n: number) => `SM${ws.id.replace(/-/g, '')}${n}`;
  const consent = async () => (await ws.api.get('/v1/customers/r-1')).body.smsConsent;

  const stop = { MessageSid: sid(1), From: phone, To: SMS_FROM, Body: 'STOP' };
  expect((await inbound(stop)).status).toBe(200);
  expect(await consent()).toBe('unsubscribed');
  expect((await inbound({ MessageSid: sid(2), From: phone, To: SMS_FROM, Body: 'START' })).status).toBe(200);
  expect(await consent()).toBe('subscribed');

  // Twilio retries a webhook it thinks failed; an attacker may replay a captured one.
  const replay = await inbound(stop);
  expect(replay.status).toBe(200);
  expect(await consent()).toBe('subscribed');
  expect(await isSuppressed(srv.deps.db, ws.id, 'sms', phone)).toBe(false);

  // A replayed START after a new STOP does not re-opt them in either.
  expect((await inbound({ MessageSid: sid(3), From: phone, To: SMS_FROM, Body: 'STOP' })).status).toBe(200);
  expect((await inbound({ MessageSid: sid(2), From: phone, To: SMS_FROM, Body: 'START' })).status).toBe(200);
  expect(await consent()).toBe('unsubscribed');
  expect(await isSuppressed(srv.deps.db, ws.id, 'sms', phone)).toBe(true);
});
