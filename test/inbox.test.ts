import type { Worker } from 'bullmq';
import twilio from 'twilio';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { closeWorkers, startWorkers } from '../workers/index';

/**
 * The built-in inbox end to end: a hark with its defaults (SMTP_URL inbox:, and TWILIO_API_URL
 * inbox:), its real workers (fan-out, dispatch through the sender thread), and the API.
 */
jest.setTimeout(60_000);

let srv: TestServer;
let workers: Worker[] = [];

beforeAll(async () => {
  // No SMTP_URL: the default outside production is the inbox. SMS: the inbox as well.
  srv = await startTestServer({ env: { TWILIO_API_URL: 'inbox:', PUBLIC_URL: 'http://shop.test' } });
  expect(srv.deps.config.SMTP_URL).toBe('inbox:');
  workers = await startWorkers(srv.deps);
});
afterAll(async () => {
  await closeWorkers(workers);
  await srv.close();
});

type Ws = Awaited<ReturnType<typeof newWorkspace>>;

async function shop(settings: Record<string, unknown> = {}): Promise<Ws> {
  const ws = await newWorkspace(srv.url, 'inbox shop', { timezone: 'UTC' });
  const s = await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', fromName: 'Inbox Shop', smsFrom: '+15005550006', postalAddress: '1 Main St, Springfield', ...settings });
  expect(s.status).toBe(200);
  return ws;
}

async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function campaign(ws: Ws, channel: 'email' | 'sms', body: Record<string, unknown>) {
  const t = await ws.api.post('/v1/templates', { name: `${channel} t`, channel, ...body });
  expect(t.status).toBe(201);
  const seg = await ws.api.post('/v1/segments', { name: 'everyone', definition: { field: 'createdDaysAgo', op: 'gte', value: 0 } });
  expect(seg.status).toBe(201);
  const c = await ws.api.post('/v1/campaigns', { name: `${channel} campaign`, channel, templateId: t.body.id, segmentIds: [seg.body.id] });
  expect(c.status).toBe(201);
  return { templateId: t.body.id as string, campaignId: c.body.id as string };
}

describe('built-in inbox', () => {
  test('when an email campaign is sent with the inbox default, then each subscribed customer\'s email is in the inbox with headers and tracked links, and the campaign counts it delivered', async () => {
    const ws = await shop();
    for (const [id, consent] of [['ann', 'subscribed'], ['bob', 'subscribed'], ['cat', 'unsubscribed']] as const) {
      expect((await ws.api.put(`/v1/customers/${id}`, { email: `${id}@example.com`, firstName: id.toUpperCase(), emailConsent: consent })).status).toBe(201);
    }
    // Two customer records sharing one address: one message (dedup).
    expect((await ws.api.put('/v1/customers/ann2', { email: 'ANN@example.com', emailConsent: 'subscribed' })).status).toBe(201);
    const { campaignId } = await campaign(ws, 'email', { subject: 'Hello {{ customer.firstName }}', body: '<p>Hi {{ customer.firstName }}, <a href="https://shop.example/sale">sale</a></p>' });
    expect((await ws.api.post(`/v1/campaigns/${campaignId}/send`)).status).toBe(202);

    const done = await until('the campaign to be sent', async () => {
      const c = await ws.api.get(`/v1/campaigns/${campaignId}`);
      return c.body.status === 'sent' && c.body;
    });
    expect(done.counts.delivered).toBe(2);
    expect(done.counts.suppressed.unsubscribed).toBe(1);
    expect(done.counts.suppressed.duplicate).toBe(1);
    expect(done.problems).toEqual([]);

    const inbox = await ws.api.get('/v1/inbox?channel=email');
    expect(inbox.status).toBe(200);
    expect(inbox.body.data.map((m: { to: string }) => m.to).sort()).toEqual(['ann@example.com', 'bob@example.com']);
    const bob = inbox.body.data.find((m: { to: string }) => m.to === 'bob@example.com');
    expect(bob.subject).toBe('Hello BOB');
    expect(bob.from).toBe('"Inbox Shop" <shop@example.com>');
    expect(bob.headers['List-Unsubscribe']).toMatch(/^<http:\/\/shop\.test\/u\//);
    expect(bob.headers['List-Unsubscribe-Post']).toBe('List-Unsubscribe=One-Click');
    expect(bob.headers['Message-ID']).toBe(`<hark.${bob.messageId}@example.com>`);
    expect(bob.html).toContain('http://shop.test/c/');
    expect(bob.html).not.toContain('href="https://shop.example/sale"');
    expect(bob.text).toContain('1 Main St, Springfield');
    const msgs = await ws.api.get(`/v1/campaigns/${campaignId}/messages?status=delivered`);
    expect(msgs.body.data.map((m: { id: string }) => m.id)).toContain(bob.messageId);

    // Another workspace sees none of it.
    const other = await shop();
    expect((await other.api.get('/v1/inbox')).body.data).toEqual([]);
  });

  test('when an SMS campaign is sent with TWILIO_API_URL=inbox:, then the SMS is in the inbox with its encoding and segments, and becomes delivered', async () => {
    const ws = await shop();
    expect((await ws.api.put('/v1/customers/s1', { phone: '+15125550111', smsConsent: 'subscribed', firstName: 'Zoë' })).status).toBe(201);
    const { campaignId } = await campaign(ws, 'sms', { body: 'Hi {{ customer.firstName }}, 20% off today' });
    expect((await ws.api.post(`/v1/campaigns/${campaignId}/send`)).status).toBe(202);
    const c = await until('the SMS to be delivered', async () => {
      const r = await ws.api.get(`/v1/campaigns/${campaignId}`);
      return r.body.counts.delivered === 1 && r.body;
    });
    expect(c.counts.sent).toBe(1);
    const inbox = await ws.api.get('/v1/inbox?channel=sms');
    expect(inbox.body.data).toHaveLength(1);
    const sms = inbox.body.data[0];
    expect(sms).toMatchObject({ channel: 'sms', to: '+15125550111', from: '+15005550006', encoding: 'UCS-2', segments: 1, subject: null, html: null });
    expect(sms.text).toMatch(/^Hi Zoë, 20% off today/);
    expect(sms.text).toContain('STOP');
  });

  test('when the inbox holds more than a page, then the cursor walks it newest first without repeats', async () => {
    const ws = await shop();
    const t = await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'S', body: '<p>x</p>' });
    for (let i = 0; i < 3; i++) expect((await ws.api.post(`/v1/templates/${t.body.id}/test`, { to: [`a${i}@example.com`] })).status).toBe(202);
    const p1 = await ws.api.get('/v1/inbox?limit=2');
    expect(p1.body.data.map((m: { to: string }) => m.to)).toEqual(['a2@example.com', 'a1@example.com']);
    const p2 = await ws.api.get(`/v1/inbox?limit=2&cursor=${p1.body.nextCursor}`);
    expect(p2.body.data.map((m: { to: string }) => m.to)).toEqual(['a0@example.com']);
    expect(p2.body.nextCursor).toBeNull();
    expect((await ws.api.get('/v1/inbox?cursor=garbage')).status).toBe(400);
    expect((await ws.api.get('/v1/inbox?channel=fax')).status).toBe(400);
    expect((await ws.api.get('/v1/inbox?limit=1001')).status).toBe(400);
  });

  test('when a customer is erased, then their inbox copies go too', async () => {
    const ws = await shop();
    expect((await ws.api.put('/v1/customers/gone', { email: 'gone@example.com', emailConsent: 'subscribed' })).status).toBe(201);
    const { campaignId } = await campaign(ws, 'email', { subject: 'S', body: '<p>x</p>' });
    expect((await ws.api.post(`/v1/campaigns/${campaignId}/send`)).status).toBe(202);
    await until('the email in the inbox', async () => (await ws.api.get('/v1/inbox')).body.data.length === 1);
    expect((await ws.api.delete('/v1/customers/gone')).status).toBe(204);
    expect((await ws.api.get('/v1/inbox')).body.data).toEqual([]);
  });
});

describe('test sends', () => {
  test('when a template is tested as a customer, then each address gets it now with "[Test] " and nothing is counted', async () => {
    const ws = await shop();
    expect((await ws.api.put('/v1/customers/vip1', { email: 'vip1@example.com', firstName: 'Vera', emailConsent: 'subscribed' })).status).toBe(201);
    const { templateId, campaignId } = await campaign(ws, 'email', { subject: 'For {{ customer.firstName }}', body: '<p>Hello {{ customer.firstName }}</p>' });
    const r = await ws.api.post(`/v1/templates/${templateId}/test`, { to: ['me@example.com', 'boss@example.com'], customerExternalId: 'vip1' });
    expect(r.status).toBe(202);
    expect(r.body.data).toEqual([
      { to: 'me@example.com', channel: 'email', status: 'sent', error: null },
      { to: 'boss@example.com', channel: 'email', status: 'sent', error: null },
    ]);
    const inbox = (await ws.api.get('/v1/inbox')).body.data;
    expect(inbox).toHaveLength(2);
    for (const m of inbox) {
      expect(m.subject).toBe('[Test] For Vera');
      expect(m.test).toBe(true);
      expect(m.messageId).toBeNull();
    }
    // Sample customer by default.
    const c = await ws.api.post(`/v1/campaigns/${campaignId}/test`, { to: ['me@example.com'] });
    expect(c.status).toBe(202);
    expect((await ws.api.get('/v1/inbox?limit=1')).body.data[0].subject).toBe('[Test] For Alex');
    // Counted in no campaign, message list or report.
    expect((await srv.deps.db('messages').where({ workspace_id: ws.id }).count({ n: '*' }))[0]!.n).toBe('0');
    const camp = await ws.api.get(`/v1/campaigns/${campaignId}`);
    expect(camp.body.counts.targeted).toBe(0);
    expect((await ws.api.get('/v1/messages')).body.data).toEqual([]);
  });

  test('when a test send is bad (6 addresses, no address, neither email nor E.164, wrong channel, unknown customer or template), then 400/404/422 and nothing is sent', async () => {
    const ws = await shop();
    const { templateId } = await campaign(ws, 'email', { subject: 'S', body: '<p>x</p>' });
    const sms = await ws.api.post('/v1/templates', { name: 'sms', channel: 'sms', body: 'Hi' });
    const six = Array.from({ length: 6 }, (_, i) => `p${i}@example.com`);
    const cases: Array<[string, unknown, number, string?]> = [
      [templateId, { to: six }, 400, 'to'],
      [templateId, { to: [] }, 400, 'to'],
      [templateId, {}, 400, 'to'],
      [templateId, { to: ['not-an-address'] }, 400, 'to.0'],
      [templateId, { to: ['me@example.com', '5125550100'] }, 400, 'to.1'],
      [templateId, { to: ['+15125550100'] }, 422, 'to.0'],
      [sms.body.id, { to: ['me@example.com'] }, 422, 'to.0'],
      [templateId, { to: ['me@example.com'], customerExternalId: 'nobody' }, 404],
      ['00000000-0000-4000-8000-000000000000', { to: ['me@example.com'] }, 404],
      ['nope', { to: ['me@example.com'] }, 404],
    ];
    for (const [id, body, status, path] of cases) {
      const r = await ws.api.post(`/v1/templates/${id}/test`, body);
      expect({ body, status: r.status }).toEqual({ body, status });
      expect(r.body.error.message).toBeTruthy();
      if (path) expect(r.body.error.details[0].path).toBe(path);
    }
    expect((await ws.api.post('/v1/campaigns/00000000-0000-4000-8000-000000000000/test', { to: ['me@example.com'] })).status).toBe(404);
    expect((await ws.api.get('/v1/inbox')).body.data).toEqual([]);
  });

  test('when a workspace passes 30 test sends in an hour, then 429 with Retry-After, nothing sent, and other workspaces are not affected', async () => {
    const ws = await shop();
    const { templateId } = await campaign(ws, 'email', { subject: 'S', body: '<p>x</p>' });
    const five = (k: number) => Array.from({ length: 5 }, (_, i) => `r${k}-${i}@example.com`);
    for (let k = 0; k < 5; k++) expect((await ws.api.post(`/v1/templates/${templateId}/test`, { to: five(k) })).status).toBe(202);
    // 25 used: 5 more fit (each address counts as one send), then the hour is used up.
    expect((await ws.api.post(`/v1/templates/${templateId}/test`, { to: five(9) })).status).toBe(202);
    const r = await ws.api.post(`/v1/templates/${templateId}/test`, { to: ['late@example.com'] });
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe('rate_limited');
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await ws.api.get('/v1/inbox?limit=100')).body.data).toHaveLength(30);
    const other = await shop();
    const t2 = await other.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'S', body: '<p>x</p>' });
    expect((await other.api.post(`/v1/templates/${t2.body.id}/test`, { to: ['me@example.com'] })).status).toBe(202);
  });

  test('when an SMS template is tested, then the SMS is in the inbox with "[Test] "', async () => {
    const ws = await shop();
    const t = await ws.api.post('/v1/templates', { name: 'sms', channel: 'sms', body: 'Hi {{ customer.firstName }}' });
    const r = await ws.api.post(`/v1/templates/${t.body.id}/test`, { to: ['+15125550100'] });
    expect(r.status).toBe(202);
    const m = (await ws.api.get('/v1/inbox?channel=sms')).body.data[0];
    expect(m.text).toMatch(/^\[Test\] Hi Alex/);
    expect(m.encoding).toBe('GSM-7');
  });
});

describe('through a real SMTP server', () => {
  let peer: SmtpPeer;
  let smtpSrv: TestServer;
  beforeAll(async () => {
    peer = await startSmtpPeer();
    smtpSrv = await startTestServer({ env: { SMTP_URL: peer.url } });
  });
  afterAll(async () => {
    await smtpSrv.close();
    await peer.close();
  });

  test('when SMTP_URL is a mail server, then a test send reaches it with the [Test] subject and the inbox stays empty', async () => {
    const ws = await newWorkspace(smtpSrv.url, 'smtp shop');
    await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
    const t = await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Spring', body: '<p>x</p>' });
    const r = await ws.api.post(`/v1/templates/${t.body.id}/test`, { to: ['me@example.com'] });
    expect(r.status).toBe(202);
    await peer.waitFor(1);
    const [mail] = await peer.parseAll();
    expect(mail!.subject).toBe('[Test] Spring');
    expect(peer.received[0]!.envelopeTo).toEqual(['me@example.com']);
    expect((await ws.api.get('/v1/inbox')).body.data).toEqual([]);
  });

  test('when the mail server is down, then the test send answers 202 with the failure per address', async () => {
    const down = await startSmtpPeer();
    await down.close();
    const s = await startTestServer({ env: { SMTP_URL: down.url } });
    try {
      const ws = await newWorkspace(s.url, 'down shop');
      const t = await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'S', body: '<p>x</p>' });
      const r = await ws.api.post(`/v1/templates/${t.body.id}/test`, { to: ['me@example.com'] });
      expect(r.status).toBe(202);
      expect(r.body.data[0]).toMatchObject({ status: 'failed', error: expect.stringMatching(/^SMTP E[A-Z]+: connection problem/) });
    } finally {
      await s.close();
    }
  });
});

describe('Twilio webhooks without a Twilio account', () => {
  test('when no Twilio account is configured, then a webhook signed with the old default token "dev-twilio-token" is refused (404) and changes nothing', async () => {
    const s = await startTestServer({ env: { TWILIO_ACCOUNT_SID: '', TWILIO_AUTH_TOKEN: '', PUBLIC_URL: 'http://shop.test' } });
    try {
      expect(s.deps.config.TWILIO_AUTH_TOKEN).toBeUndefined();
      expect(s.deps.config.SMS_MODE).toBe('inbox');
      for (const path of ['/webhooks/twilio/inbound', '/webhooks/twilio/status']) {
        const params = { From: '+15125550100', To: '+15005550006', Body: 'START', MessageSid: 'SM1', MessageStatus: 'failed', ErrorCode: '21610' };
        const sig = twilio.getExpectedTwilioSignature('dev-twilio-token', `http://shop.test${path}`, params);
        const r = await fetch(s.url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig }, body: new URLSearchParams(params).toString() });
        expect(r.status).toBe(404);
      }
    } finally {
      await s.close();
    }
  });

  test('when a Twilio account is configured, then a request signed with "dev-twilio-token" is 403', async () => {
    const path = '/webhooks/twilio/inbound';
    const params = { From: '+15125550100', To: '+15005550006', Body: 'START' };
    const sig = twilio.getExpectedTwilioSignature('dev-twilio-token', `${srv.deps.config.PUBLIC_URL}${path}`, params);
    const r = await fetch(srv.url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': sig }, body: new URLSearchParams(params).toString() });
    expect(r.status).toBe(403);
  });
});

describe('a campaign that cannot deliver says so', () => {
  test('when the mail server refuses connections and Twilio does not answer, then the campaign GET carries problems with code, message, since and messages', async () => {
    const down = await startSmtpPeer();
    await down.close();
    const s = await startTestServer({ env: { SMTP_URL: down.url, TWILIO_API_URL: `http://127.0.0.1:${down.port}` } });
    const w = await startWorkers(s.deps);
    try {
      const ws = await newWorkspace(s.url, 'broken shop');
      await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', smsFrom: '+15005550006', postalAddress: '1 Main St' });
      for (const id of ['p1', 'p2']) expect((await ws.api.put(`/v1/customers/${id}`, { email: `${id}@example.com`, phone: id === 'p1' ? '+15125550101' : '+15125550102', emailConsent: 'subscribed', smsConsent: 'subscribed' })).status).toBe(201);
      const seg = await ws.api.post('/v1/segments', { name: 'all', definition: { field: 'createdDaysAgo', op: 'gte', value: 0 } });
      const started = Date.now();
      const ids: Record<string, string> = {};
      for (const channel of ['email', 'sms'] as const) {
        const t = await ws.api.post('/v1/templates', channel === 'email' ? { name: 'e', channel, subject: 'S', body: '<p>x</p>' } : { name: 's', channel, body: 'Hi' });
        const c = await ws.api.post('/v1/campaigns', { name: channel, channel, templateId: t.body.id, segmentIds: [seg.body.id] });
        expect((await ws.api.post(`/v1/campaigns/${c.body.id}/send`)).status).toBe(202);
        ids[channel] = c.body.id;
      }
      const email = await until('the email problem', async () => {
        const c = await ws.api.get(`/v1/campaigns/${ids.email}`);
        return c.body.problems?.[0]?.messages === 2 && c.body;
      });
      expect(email.status).toBe('sending');
      expect(email.problems).toEqual([{ code: 'smtp_unreachable', message: expect.stringMatching(/^The mail server \(SMTP_URL\) does not answer: SMTP E[A-Z]+: connection problem; hark keeps retrying\.$/), since: expect.any(String), messages: 2 }]);
      expect(Date.parse(email.problems[0].since)).toBeGreaterThanOrEqual(started - 1000);
      expect(Date.parse(email.problems[0].since)).toBeLessThanOrEqual(Date.now());
      const sms = await until('the SMS problem', async () => {
        const c = await ws.api.get(`/v1/campaigns/${ids.sms}`);
        return c.body.problems?.[0]?.messages === 2 && c.body;
      });
      expect(sms.problems).toEqual([{ code: 'sms_provider_unavailable', message: expect.stringMatching(/^Twilio does not answer/), since: expect.any(String), messages: 2 }]);
      // The list shows it too.
      const list = await ws.api.get('/v1/campaigns');
      expect(list.body.data.every((c: { problems: unknown[] }) => c.problems.length === 1)).toBe(true);
    } finally {
      await closeWorkers(w);
      await s.close();
    }
  });
});
