import twilio from 'twilio';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { createSmtpChannel } from '../src/channels/smtp';
import { buildRenderContext, loadTemplate, renderMessage, RenderedEmail } from '../src/templates/render';
import { publicLinks, signingSecret, signToken } from '../src/public/tokens';
import { isSuppressed, suppress, suppressedSet, unsuppress } from '../src/suppressions/repo';

const PUBLIC_URL = 'https://hark.example.com';
const TWILIO_TOKEN = 'twilio-auth-token-for-tests';
const SMS_FROM = '+15125550199';

let srv: TestServer;
let peer: SmtpPeer;
beforeAll(async () => {
  srv = await startTestServer({ env: { PUBLIC_URL, TWILIO_AUTH_TOKEN: TWILIO_TOKEN, HARK_SIGNING_SECRET: 'test-signing-secret-0123456789-abcdef' } });
  peer = await startSmtpPeer();
});
afterAll(async () => {
  await peer.close();
  await srv.close();
});

/** Links in mail point at PUBLIC_URL; the test server listens elsewhere. */
const local = (url: string) => url.replace(PUBLIC_URL, srv.url);
const db = () => srv.deps.db;

async function customerId(workspaceId: string, externalId: string): Promise<string> {
  return String((await db()('customers').where({ workspace_id: workspaceId, external_id: externalId }).first('id')).id);
}

async function insertMessage(row: Record<string, unknown>): Promise<string> {
  const [m] = await db()('messages').insert({ status: 'sent', sent_at: new Date(), ...row }).returning('id');
  return String(m.id);
}

/** A workspace, a subscribed customer, an email message rendered and delivered to the real SMTP peer. */
async function deliveredEmail() {
  const ws = await newWorkspace(srv.url, 'Acme');
  await ws.api.patch('/v1/settings', { postalAddress: '1 Main St, Springfield', fromEmail: 'news@acme.example' });
  const email = `ann.${ws.id.slice(0, 8)}@example.com`;
  expect((await ws.api.put('/v1/customers/c-1', { email, firstName: 'Ann', emailConsent: 'subscribed' })).status).toBe(201);
  const cid = await customerId(ws.id, 'c-1');
  const t = await ws.api.post('/v1/templates', {
    name: 'Sale', channel: 'email', subject: 'Hi {{ customer.firstName }}',
    body: '<html><body><p>Hi {{ customer.firstName }}</p><a href="https://shop.example.com/sale?x=1&amp;y=2">Shop</a></body></html>',
  });
  const messageId = await insertMessage({ workspace_id: ws.id, customer_id: cid, channel: 'email', address: email, template_id: t.body.id });
  const tpl = await loadTemplate(db(), ws.id, t.body.id);
  const ctx = await buildRenderContext(db(), ws.id, cid, new Date());
  const links = publicLinks(srv.deps.config, messageId);
  const r = (await renderMessage(tpl, ctx, links)) as RenderedEmail;
  const ch = createSmtpChannel({ url: peer.url, pool: false });
  const before = peer.count();
  await ch.send({ messageId, to: email, from: 'news@acme.example', subject: r.subject, html: r.html, text: r.text, headers: r.headers });
  await ch.close();
  const mail = (await peer.parseAll())[before]!;
  return { ws, cid, email, messageId, mail };
}

const consentOf = async (cid: string) => (await db()('customers').where({ id: cid }).first('email_consent', 'sms_consent'));
const messageEvents = async (messageId: string) => (await db()('message_events').where({ message_id: messageId }).orderBy('id')).map((e) => e.type);
const customerEvents = async (cid: string, type: string) => db()('events').where({ customer_id: cid, type });

describe('one-click unsubscribe', () => {
  test('when the List-Unsubscribe URL of a received email is fetched then POSTed, then GET changes nothing and POST unsubscribes once', async () => {
    const { ws, cid, email, messageId, mail } = await deliveredEmail();
    const header = mail.headerLines.find((h) => h.key === 'list-unsubscribe')!.line;
    const url = /<([^>]+)>/.exec(header)![1]!;
    expect(url.startsWith(`${PUBLIC_URL}/u/`)).toBe(true);
    expect(mail.html).toContain(url.replace(/&/g, '&amp;'));
    expect(mail.text).toContain(url);
    expect(mail.text).toContain('1 Main St, Springfield');

    const page = await fetch(local(url));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post"');
    expect(page.headers.get('set-cookie')).toBeNull();
    expect((await consentOf(cid)).email_consent).toBe('subscribed');
    expect(await isSuppressed(db(), ws.id, 'email', email)).toBe(false);

    const post = () => fetch(local(url), { method: 'POST', body: 'List-Unsubscribe=One-Click', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const first = await post();
    expect(first.status).toBe(200);
    expect(first.headers.get('set-cookie')).toBeNull();
    expect((await consentOf(cid)).email_consent).toBe('unsubscribed');
    expect(await isSuppressed(db(), ws.id, 'email', email)).toBe(true);
    expect((await post()).status).toBe(200);
    expect(await messageEvents(messageId)).toEqual(['unsubscribed']);
    expect((await ws.api.get('/v1/customers/c-1')).body.emailConsent).toBe('unsubscribed');
  });

  test('when the token is forged, of the wrong kind or expired, then 400 and nothing changes', async () => {
    const { ws, cid, email, messageId } = await deliveredEmail();
    const secret = signingSecret(srv.deps.config);
    const good = signToken({ k: 'u', m: messageId }, secret);
    const forged = good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA');
    const otherMessage = signToken({ k: 'u', m: messageId }, 'another-secret-0123456789');
    const wrongKind = signToken({ k: 'o', m: messageId }, secret);
    const expired = signToken({ k: 'u', m: messageId }, secret, new Date(Date.now() - 401 * 86400_000));
    for (const tok of [forged, otherMessage, wrongKind, expired, 'garbage', 'u.1.abc.xyz']) {
      expect((await fetch(`${srv.url}/u/${tok}`, { method: 'POST' })).status).toBe(400);
      expect((await fetch(`${srv.url}/u/${tok}`)).status).toBe(400);
    }
    expect((await consentOf(cid)).email_consent).toBe('subscribed');
    expect(await isSuppressed(db(), ws.id, 'email', email)).toBe(false);
    expect(await messageEvents(messageId)).toEqual([]);
  });

  test('when a token is 60 days old, then it still works', async () => {
    const { cid, messageId } = await deliveredEmail();
    const tok = signToken({ k: 'u', m: messageId }, signingSecret(srv.deps.config), new Date(Date.now() - 61 * 86400_000));
    expect((await fetch(`${srv.url}/u/${tok}`, { method: 'POST' })).status).toBe(200);
    expect((await consentOf(cid)).email_consent).toBe('unsubscribed');
  });
});

describe('open pixel and click redirect', () => {
  test('when the pixel of a received email is loaded twice, then a GIF each time and one email_open event', async () => {
    const { cid, messageId, mail } = await deliveredEmail();
    const pixel = /<img src="([^"]+\/o\/[^"]+)"/.exec(mail.html as string)![1]!;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(local(pixel));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/gif');
      expect(Buffer.from(await res.arrayBuffer()).subarray(0, 3).toString()).toBe('GIF');
    }
    const opens = await customerEvents(cid, 'email_open');
    expect(opens).toHaveLength(1);
    expect(opens[0].properties).toMatchObject({ messageId });
    expect(await messageEvents(messageId)).toEqual(['opened']);
    expect((await db()('messages').where({ id: messageId }).first('opened_at')).opened_at).not.toBeNull();
  });

  test('when a tracked link of a received email is followed, then a redirect to the original URL and an email_click event', async () => {
    const { cid, messageId, mail } = await deliveredEmail();
    const tracked = /<a href="([^"]+\/c\/[^"]+)">Shop<\/a>/.exec(mail.html as string)![1]!.replace(/&amp;/g, '&');
    // The plain-text part links directly (no tracking there).
    expect(mail.text).toContain('https://shop.example.com/sale?x=1&y=2');
    const scanned = await fetch(local(tracked), { method: 'HEAD', redirect: 'manual' });
    expect(scanned.status).toBe(302);
    expect(await customerEvents(cid, 'email_click')).toHaveLength(0);
    const res = await fetch(local(tracked), { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://shop.example.com/sale?x=1&y=2');
    await fetch(local(tracked), { redirect: 'manual' });
    const clicks = await customerEvents(cid, 'email_click');
    expect(clicks).toHaveLength(1);
    expect(clicks[0].properties).toMatchObject({ url: 'https://shop.example.com/sale?x=1&y=2', messageId });
    expect(await messageEvents(messageId)).toEqual(['clicked']);
  });

  test('when a click token is altered to point elsewhere, then 400 and no redirect', async () => {
    const { cid, messageId } = await deliveredEmail();
    const tok = signToken({ k: 'c', m: messageId, u: 'https://shop.example.com/sale' }, signingSecret(srv.deps.config));
    const parts = tok.split('.');
    parts[3] = Buffer.from('https://evil.example.net/').toString('base64url');
    const res = await fetch(`${srv.url}/c/${parts.join('.')}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(await customerEvents(cid, 'email_click')).toHaveLength(0);
  });
});

describe('Twilio webhooks', () => {
  const post = (path: string, params: Record<string, string>, signature?: string) =>
    fetch(srv.url + path, {
      method: 'POST',
      body: new URLSearchParams(params),
      headers: { 'x-twilio-signature': signature ?? twilio.getExpectedTwilioSignature(TWILIO_TOKEN, PUBLIC_URL + path, params) },
    });

  async function smsCustomer() {
    const ws = await newWorkspace(srv.url, 'Acme');
    const phone = `+1512555${String(Math.floor(Math.random() * 9000) + 1000)}`;
    expect((await ws.api.patch('/v1/settings', { smsFrom: SMS_FROM })).status).toBe(200);
    await ws.api.put('/v1/customers/p-1', { phone, smsConsent: 'subscribed' });
    return { ws, phone, cid: await customerId(ws.id, 'p-1') };
  }

  test('when status callbacks arrive out of order and twice, then the status only moves forward and events are recorded once', async () => {
    const { ws, phone, cid } = await smsCustomer();
    const sid = `SM${ws.id.replace(/-/g, '')}`;
    const messageId = await insertMessage({ workspace_id: ws.id, customer_id: cid, channel: 'sms', address: phone, provider_id: sid });
    const path = `/webhooks/twilio/status?ws=${ws.id}&m=${messageId}`;
    const status = async () => (await db()('messages').where({ id: messageId }).first('status')).status;

    expect((await post(path, { MessageSid: sid, MessageStatus: 'delivered' })).status).toBe(204);
    expect(await status()).toBe('delivered');
    expect((await post(path, { MessageSid: sid, MessageStatus: 'delivered' })).status).toBe(204);
    expect((await post(path, { MessageSid: sid, MessageStatus: 'sent' })).status).toBe(204);
    expect((await post(path, { MessageSid: sid, MessageStatus: 'failed', ErrorCode: '30003' })).status).toBe(204);
    expect(await status()).toBe('delivered');
    expect(await messageEvents(messageId)).toEqual(['delivered']);
  });

  test('when a callback reports 21610 for a sent message, then it fails and the number is suppressed', async () => {
    const { ws, phone, cid } = await smsCustomer();
    const sid = `SM${ws.id.replace(/-/g, '')}`;
    const messageId = await insertMessage({ workspace_id: ws.id, customer_id: cid, channel: 'sms', address: phone, provider_id: sid });
    const path = `/webhooks/twilio/status?ws=${ws.id}&m=${messageId}`;
    expect((await post(path, { MessageSid: sid, MessageStatus: 'undelivered', ErrorCode: '21610' })).status).toBe(204);
    expect((await db()('messages').where({ id: messageId }).first('status')).status).toBe('failed');
    expect(await isSuppressed(db(), ws.id, 'sms', phone)).toBe(true);
  });

  test('when a webhook has a bad or missing signature, then 403 and nothing changes', async () => {
    const { ws, phone, cid } = await smsCustomer();
    const sid = `SM${ws.id.replace(/-/g, '')}`;
    const messageId = await insertMessage({ workspace_id: ws.id, customer_id: cid, channel: 'sms', address: phone, provider_id: sid });
    const path = `/webhooks/twilio/status?ws=${ws.id}&m=${messageId}`;
    const params = { MessageSid: sid, MessageStatus: 'delivered' };
    // Signed for other parameters than those sent.
    const wrong = twilio.getExpectedTwilioSignature(TWILIO_TOKEN, PUBLIC_URL + path, { ...params, MessageStatus: 'sent' });
    expect((await post(path, params, wrong)).status).toBe(403);
    expect((await post(path, params, 'bm9wZQ==')).status).toBe(403);
    expect((await fetch(srv.url + path, { method: 'POST', body: new URLSearchParams(params) })).status).toBe(403);
    expect((await db()('messages').where({ id: messageId }).first('status')).status).toBe('sent');
    const inbound = { From: phone, To: SMS_FROM, Body: 'STOP' };
    const bad = twilio.getExpectedTwilioSignature('not-the-token', `${PUBLIC_URL}/webhooks/twilio/inbound`, inbound);
    expect((await post('/webhooks/twilio/inbound', inbound, bad)).status).toBe(403);
    expect((await consentOf(cid)).sms_consent).toBe('subscribed');
  });

  test.each(['STOP', 'stopall', ' Unsubscribe ', 'CANCEL', 'end', 'QUIT'])('when %p arrives inbound, then the number is opted out; START opts it back in', async (word) => {
    const { ws, phone, cid } = await smsCustomer();
    const stop = await post('/webhooks/twilio/inbound', { From: phone, To: SMS_FROM, Body: word });
    expect(stop.status).toBe(200);
    expect(stop.headers.get('content-type')).toMatch(/xml/);
    expect((await consentOf(cid)).sms_consent).toBe('unsubscribed');
    expect(await isSuppressed(db(), ws.id, 'sms', phone)).toBe(true);
    const start = await post('/webhooks/twilio/inbound', { From: phone, To: SMS_FROM, Body: word === 'QUIT' ? 'unstop' : 'START' });
    expect(start.status).toBe(200);
    expect((await consentOf(cid)).sms_consent).toBe('subscribed');
    expect(await isSuppressed(db(), ws.id, 'sms', phone)).toBe(false);
  });

  test('when an inbound message is not a keyword, then consent is unchanged', async () => {
    const { cid, phone } = await smsCustomer();
    expect((await post('/webhooks/twilio/inbound', { From: phone, To: SMS_FROM, Body: 'please stop sending' })).status).toBe(200);
    expect((await consentOf(cid)).sms_consent).toBe('subscribed');
  });
});

describe('suppression list', () => {
  test('when addresses are suppressed, then a batch lookup finds them case-insensitively, per workspace and channel, and START lifts only a STOP', async () => {
    const a = await newWorkspace(srv.url, 'A');
    const b = await newWorkspace(srv.url, 'B');
    await suppress(db(), a.id, 'email', 'Ann@Example.com', 'unsubscribed');
    await suppress(db(), a.id, 'email', 'ann@example.com', 'bounced');
    await suppress(db(), a.id, 'sms', '+15125550100', 'sms_stop');
    await suppress(db(), a.id, 'sms', '+15125550101', 'invalid_number');
    const found = await suppressedSet(db(), a.id, 'email', ['ann@example.com', 'ANN@example.com', 'bob@example.com']);
    expect([...found].sort()).toEqual(['ANN@example.com', 'ann@example.com']);
    expect(await suppressedSet(db(), b.id, 'email', ['ann@example.com'])).toEqual(new Set());
    expect(await suppressedSet(db(), a.id, 'sms', ['ann@example.com'])).toEqual(new Set());
    // The first reason is kept; the list stores hashes, never the address.
    const rows = await db()('suppressions').where({ workspace_id: a.id, channel: 'email' });
    expect(rows.map((r) => r.reason)).toEqual(['unsubscribed']);
    expect(JSON.stringify(rows)).not.toContain('example.com');
    expect(await unsuppress(db(), a.id, 'sms', '+15125550100', ['sms_stop'])).toBe(1);
    expect(await unsuppress(db(), a.id, 'sms', '+15125550101', ['sms_stop'])).toBe(0);
    expect([...(await suppressedSet(db(), a.id, 'sms', ['+15125550100', '+15125550101']))]).toEqual(['+15125550101']);
  });
});
