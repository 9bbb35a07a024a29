import { randomUUID } from 'node:crypto';
import { ManualClock } from '../src/clock';
import * as service from '../src/campaigns/service';
import { dispatchBatch, DispatchContext } from '../src/messages/dispatch';
import { RateLimiter } from '../src/messages/rate';
import { heartbeat } from '../src/messages/repo';
import { channelsFromConfig } from '../src/channels/config';
import { newWorkspace } from './helpers/api';
import { startTestServer, TestServer } from './helpers/server';
import { startSmtpPeer, SmtpPeer } from './helpers/smtp-peer';
import { startTwilioStandin, TwilioStandin } from './helpers/twilio-standin';

jest.setTimeout(60_000);

const clock = new ManualClock(new Date('2026-03-02T12:00:00Z'));
let server: TestServer;
let smtp: SmtpPeer;
let twilio: TwilioStandin;
const contexts: DispatchContext[] = [];

async function dispatchContext(): Promise<DispatchContext> {
  const d = server.deps;
  const ctx: DispatchContext = { db: d.db, clock, config: d.config, logger: d.logger, channels: channelsFromConfig(d.config), rate: new RateLimiter(d.redis, d.queues.prefix, { email: 1000, sms: 1000 }), workerId: randomUUID(), parallel: 4 };
  await heartbeat(d.db, ctx.workerId);
  contexts.push(ctx);
  return ctx;
}

beforeAll(async () => {
  smtp = await startSmtpPeer();
  twilio = await startTwilioStandin();
  server = await startTestServer({ clock, env: { SMTP_URL: smtp.url, TWILIO_API_URL: twilio.url } });
});
afterAll(async () => {
  for (const c of contexts) await Promise.allSettled([c.channels.email.close(), c.channels.sms.close()]);
  await server.close();
  await smtp.close();
  await twilio.close();
});

type Api = Awaited<ReturnType<typeof newWorkspace>>['api'];

async function shop(settings: Record<string, unknown> = {}) {
  const ws = await newWorkspace(server.url, 'campaign shop', { timezone: 'UTC' });
  const s = await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', smsFrom: '+15005550006', postalAddress: '1 Main St, Springfield', ...settings });
  expect(s.status).toBe(200);
  return ws;
}

async function customer(api: Api, id: string, fields: Record<string, unknown>) {
  const r = await api.put(`/v1/customers/${id}`, { emailConsent: 'subscribed', smsConsent: 'subscribed', firstName: 'Sam', ...fields });
  expect(r.status).toBe(201);
}

async function segment(api: Api, name: string, definition: unknown): Promise<string> {
  const r = await api.post('/v1/segments', { name, definition });
  expect(r.status).toBe(201);
  return r.body.id;
}

async function template(api: Api, channel: 'email' | 'sms', name = 'Sale'): Promise<string> {
  const body = channel === 'email' ? { name, channel, subject: 'Hi {{ customer.firstName }}', body: '<p>Spring sale, {{ customer.firstName }}</p>' } : { name, channel, body: 'Sale today' };
  const r = await api.post('/v1/templates', body);
  expect(r.status).toBe(201);
  return r.body.id;
}

/** Fan-out then dispatch of every due queued row, as the workers would. */
async function run(campaignId: string, ctx?: DispatchContext) {
  await service.runFanout(server.deps, campaignId);
  const ids = (await server.deps.db('messages').where({ campaign_id: campaignId, status: 'queued' }).pluck('id')).map(String);
  if (ids.length) await dispatchBatch(ctx ?? (await dispatchContext()), ids);
  await service.tick({ ...server.deps, clock }, { resumeFanouts: false });
}

const mailsTo = (addr: string) => smtp.received.filter((m) => m.envelopeTo.includes(addr)).length;

describe('campaigns', () => {
  test('when customers are in overlapping segments and share an address, then each person and address gets one message, and skipped ones carry reasons', async () => {
    const ws = await shop();
    await customer(ws.api, 'a', { email: 'ann@ov.example', city: 'Paris', gender: 'female', birthDate: '1990-05-01' });
    await customer(ws.api, 'b', { email: 'ANN@ov.example', city: 'Paris', gender: 'male' });
    await customer(ws.api, 'c', { email: 'cy@ov.example', city: 'Paris', emailConsent: 'unsubscribed' });
    await customer(ws.api, 'd', { city: 'Paris', phone: '+14155550101' });
    await customer(ws.api, 'e', { email: 'eve@ov.example', city: 'Lyon', gender: 'female' });
    const paris = await segment(ws.api, 'paris', { field: 'city', op: 'eq', value: 'Paris' });
    const women = await segment(ws.api, 'women', { field: 'gender', op: 'eq', value: 'female' });
    const tpl = await template(ws.api, 'email');
    const created = await ws.api.post('/v1/campaigns', { name: 'Spring', channel: 'email', templateId: tpl, segmentIds: [paris, women] });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('draft');
    const id = created.body.id;
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    await run(id);

    expect(mailsTo('ann@ov.example')).toBe(1);
    expect(mailsTo('eve@ov.example')).toBe(1);
    expect(mailsTo('cy@ov.example')).toBe(0);
    const mail = (await smtp.parseAll()).find((m) => m.to && JSON.stringify(m.to).includes('eve@ov.example'))!;
    const lines = mail.headerLines.map((h) => h.line).join('\n');
    expect(lines).toMatch(/^List-Unsubscribe:\s*<http[^>]+\/u\/[^>]+>/m);
    expect(lines).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    expect(mail.text).toContain('Spring sale');

    const got = await ws.api.get(`/v1/campaigns/${id}`);
    expect(got.body.status).toBe('sent');
    expect(got.body.counts).toMatchObject({ targeted: 5, sent: 2, delivered: 2, suppressed: { unsubscribed: 1, noAddress: 1, duplicate: 1, frequencyCap: 0, quietHours: 0 } });

    const msgs = await ws.api.get(`/v1/campaigns/${id}/messages?status=skipped`);
    expect(msgs.status).toBe(200);
    expect(msgs.body.data.map((m: any) => m.skipReason).sort()).toEqual(['duplicate', 'no_address', 'unsubscribed']);
    const snap = await server.deps.db('messages').join('customers', 'customers.id', 'messages.customer_id').where({ campaign_id: id, external_id: 'a' }).first('snapshot');
    expect(snap.snapshot).toMatchObject({ ageBand: '35-44', city: 'Paris', gender: 'female' });
    expect([...snap.snapshot.segmentIds].sort()).toEqual([paris, women].sort());

    const byCustomer = await ws.api.get('/v1/messages?customerExternalId=e');
    expect(byCustomer.body.data).toHaveLength(1);
    expect(byCustomer.body.data[0]).toMatchObject({ campaignId: id, status: 'delivered' });
    const page1 = await ws.api.get(`/v1/messages?campaignId=${id}&limit=2`);
    expect(page1.body.data).toHaveLength(2);
    const page2 = await ws.api.get(`/v1/messages?campaignId=${id}&limit=10&cursor=${page1.body.nextCursor}`);
    expect(page2.body.data).toHaveLength(3);
  });

  test('when a customer is in quiet hours, then the message is deferred to their end and sent then', async () => {
    clock.set('2026-03-02T23:00:00Z');
    const ws = await shop({ quietHours: { start: '21:00', end: '08:00' } });
    await customer(ws.api, 'q', { email: 'night@qh.example', city: 'Oslo', timezone: 'UTC' });
    const seg = await segment(ws.api, 'oslo', { field: 'city', op: 'eq', value: 'Oslo' });
    const id = (await ws.api.post('/v1/campaigns', { name: 'Night', channel: 'email', templateId: await template(ws.api, 'email'), segmentIds: [seg] })).body.id;
    await ws.api.post(`/v1/campaigns/${id}/send`);
    await run(id);
    expect(mailsTo('night@qh.example')).toBe(0);
    const deferred = (await ws.api.get(`/v1/campaigns/${id}/messages`)).body.data[0];
    expect(deferred).toMatchObject({ status: 'queued', quietHoursDeferred: true, sendAfter: '2026-03-03T08:00:00.000Z' });
    expect((await ws.api.get(`/v1/campaigns/${id}`)).body.counts.suppressed.quietHours).toBe(1);

    clock.set('2026-03-03T08:00:30Z');
    await run(id);
    expect(mailsTo('night@qh.example')).toBe(1);
    expect((await ws.api.get(`/v1/campaigns/${id}`)).body).toMatchObject({ status: 'sent', counts: { sent: 1 } });
    clock.set('2026-03-02T12:00:00Z');
  });

  test('when the frequency cap is reached by an earlier campaign, then the next one skips the customer with reason frequency_cap', async () => {
    const ws = await shop({ frequencyCap: { maxMessages: 1, perDays: 7 } });
    await customer(ws.api, 'f', { email: 'cap@fc.example', city: 'Rome' });
    const seg = await segment(ws.api, 'rome', { field: 'city', op: 'eq', value: 'Rome' });
    const tpl = await template(ws.api, 'email');
    const first = (await ws.api.post('/v1/campaigns', { name: 'One', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;
    await ws.api.post(`/v1/campaigns/${first}/send`);
    await run(first);
    const second = (await ws.api.post('/v1/campaigns', { name: 'Two', channel: 'email', templateId: tpl, segmentIds: [seg] })).body.id;
    await ws.api.post(`/v1/campaigns/${second}/send`);
    await run(second);
    expect(mailsTo('cap@fc.example')).toBe(1);
    expect((await ws.api.get(`/v1/campaigns/${second}`)).body.counts.suppressed.frequencyCap).toBe(1);
    expect((await ws.api.get(`/v1/campaigns/${second}/messages`)).body.data[0]).toMatchObject({ status: 'skipped', skipReason: 'frequency_cap' });
  });

  test('when an SMS campaign has a holdout and two workers dispatch the same rows, then each number gets at most one SMS and the holdout is deterministic', async () => {
    const ws = await shop();
    const n = 40;
    for (let i = 0; i < n; i++) await customer(ws.api, `s${i}`, { phone: `+1415555${String(2000 + i)}`, city: 'Austin' });
    const seg = await segment(ws.api, 'austin', { field: 'city', op: 'eq', value: 'Austin' });
    const id = (await ws.api.post('/v1/campaigns', { name: 'Text', channel: 'sms', templateId: await template(ws.api, 'sms'), segmentIds: [seg], holdoutPercent: 25 })).body.id;
    await ws.api.post(`/v1/campaigns/${id}/send`);
    // Two fan-outs at once write each customer once.
    await Promise.all([service.runFanout(server.deps, id), service.runFanout(server.deps, id)]);
    const ids = (await server.deps.db('messages').where({ campaign_id: id, status: 'queued' }).pluck('id')).map(String);
    const [w1, w2] = [await dispatchContext(), await dispatchContext()];
    await Promise.all([dispatchBatch(w1, ids), dispatchBatch(w2, ids)]);
    const counts = (await ws.api.get(`/v1/campaigns/${id}`)).body.counts;
    expect(counts.targeted).toBe(n);
    expect(counts.heldOut).toBeGreaterThan(0);
    expect(counts.sent + counts.heldOut).toBe(n);
    const to = twilio.messages.filter((m) => m.To.startsWith('+14155552')).map((m) => m.To);
    expect(new Set(to).size).toBe(to.length);
    expect(to).toHaveLength(counts.sent);
    const held = await server.deps.db('messages').where({ campaign_id: id, status: 'held_out' }).pluck('customer_id');
    const { bucket } = await import('./helpers/buckets');
    for (const c of held) expect(bucket(id, String(c), 'holdout') * 100).toBeLessThan(25);
  });

  test('when an SMS request went out and its answer never came, then the message is unknown and a second dispatch does not resend it', async () => {
    const { createTwilioChannel } = await import('../src/channels/twilio');
    const slow = await startTwilioStandin({ holdFor: ['+14155554001'] });
    const ctx = await dispatchContext();
    const sms = createTwilioChannel({ accountSid: server.deps.config.TWILIO_ACCOUNT_SID!, authToken: server.deps.config.TWILIO_AUTH_TOKEN!, apiUrl: slow.url, timeoutMs: 300 });
    const lossy = { ...ctx, channels: { email: ctx.channels.email, sms } };
    try {
      const ws = await shop();
      await customer(ws.api, 'held', { phone: '+14155554001', city: 'Lodi' });
      await customer(ws.api, 'fine', { phone: '+14155554002', city: 'Lodi' });
      const seg = await segment(ws.api, 'lodi', { field: 'city', op: 'eq', value: 'Lodi' });
      const id = (await ws.api.post('/v1/campaigns', { name: 'Lost', channel: 'sms', templateId: await template(ws.api, 'sms'), segmentIds: [seg] })).body.id;
      await ws.api.post(`/v1/campaigns/${id}/send`);
      await run(id, lossy);
      const status = async () => Object.fromEntries((await server.deps.db('messages').where({ campaign_id: id }).select('address', 'status')).map((r) => [r.address, r.status]));
      expect(await status()).toEqual({ '+14155554001': 'unknown', '+14155554002': 'sent' });
      const all = (await server.deps.db('messages').where({ campaign_id: id }).pluck('id')).map(String);
      await dispatchBatch(lossy, all);
      expect(await status()).toEqual({ '+14155554001': 'unknown', '+14155554002': 'sent' });
      expect(slow.held).toEqual(['+14155554001']);
      expect(slow.messages.map((m) => m.To)).toEqual(['+14155554002']);
    } finally {
      await sms.close();
      await slow.close();
    }
  });

  test('when an SMS body has {{ unsubscribeUrl }}, then each SMS carries its own message\'s signed link', async () => {
    const ws = await shop();
    for (let i = 0; i < 3; i++) await customer(ws.api, `u${i}`, { phone: `+1415555${String(3000 + i)}`, city: 'Tulsa' });
    const seg = await segment(ws.api, 'tulsa', { field: 'city', op: 'eq', value: 'Tulsa' });
    const tpl = await ws.api.post('/v1/templates', { name: 'Link', channel: 'sms', body: 'Sale. Leave: {{ unsubscribeUrl }}' });
    expect(tpl.status).toBe(201);
    const id = (await ws.api.post('/v1/campaigns', { name: 'Link', channel: 'sms', templateId: tpl.body.id, segmentIds: [seg] })).body.id;
    await ws.api.post(`/v1/campaigns/${id}/send`);
    await run(id);
    const rows = await server.deps.db('messages').where({ campaign_id: id }).select('id', 'address', 'status');
    expect(rows).toHaveLength(3);
    const { signingSecret, verifyToken } = await import('../src/public/tokens');
    for (const r of rows) {
      expect(r.status).toBe('sent');
      const body = twilio.messages.find((m) => m.To === r.address)!.Body;
      const token = /\/u\/([^\s]+)/.exec(body)![1]!;
      expect(verifyToken(token, signingSecret(server.deps.config), clock.now())).toMatchObject({ k: 'u', m: String(r.id) });
    }
  });

  test('when an A/B test runs, then the test share is split between variants and the rest goes to the winner after the decision', async () => {
    const ws = await shop();
    for (let i = 0; i < 30; i++) await customer(ws.api, `ab${i}`, { email: `ab${i}@ab.example`, city: 'Bonn' });
    const seg = await segment(ws.api, 'bonn', { field: 'city', op: 'eq', value: 'Bonn' });
    const [ta, tb] = [await template(ws.api, 'email', 'A'), await template(ws.api, 'email', 'B')];
    const body = { name: 'AB', channel: 'email', templateId: ta, segmentIds: [seg], variants: [{ templateId: ta, weight: 1 }, { templateId: tb, weight: 1 }], abTest: { testPercent: 50, metric: 'clicks', decideAfterHours: 2 } };
    const id = (await ws.api.post('/v1/campaigns', body)).body.id;
    await ws.api.post(`/v1/campaigns/${id}/send`);
    await run(id);
    const testShare = await server.deps.db('messages').where({ campaign_id: id }).whereNotNull('variant').count<{ count: string }[]>('* as count');
    const waiting = Number((await server.deps.db('messages').where({ campaign_id: id }).whereNull('variant').count<{ count: string }[]>('* as count'))[0]!.count);
    expect(Number(testShare[0]!.count) + waiting).toBe(30);
    expect(waiting).toBeGreaterThan(0);
    expect(smtp.received.filter((m) => m.envelopeTo.some((t) => t.endsWith('@ab.example')))).toHaveLength(30 - waiting);
    // B's recipients click.
    await server.deps.db('messages').where({ campaign_id: id, variant: 'B' }).update({ clicked_at: clock.now() });
    expect((await ws.api.get(`/v1/campaigns/${id}`)).body.status).toBe('sending');
    clock.advance(2 * 3600_000 + 1000);
    await service.tick({ ...server.deps, clock }, { resumeFanouts: false });
    const c = (await ws.api.get(`/v1/campaigns/${id}`)).body;
    expect(c.abTest).toMatchObject({ phase: 'decided', winner: 'B' });
    await run(id);
    expect(smtp.received.filter((m) => m.envelopeTo.some((t) => t.endsWith('@ab.example')))).toHaveLength(30);
    expect(Number((await server.deps.db('messages').where({ campaign_id: id, variant: 'B' }).count<{ count: string }[]>('* as count'))[0]!.count)).toBeGreaterThanOrEqual(waiting);
    expect((await ws.api.get(`/v1/campaigns/${id}`)).body.status).toBe('sent');
    clock.set('2026-03-02T12:00:00Z');
  });

  test('when a campaign is scheduled, then it is kept in Postgres, starts when due, and can be cancelled before', async () => {
    const ws = await shop();
    await customer(ws.api, 'sch', { email: 'later@sch.example', city: 'Kyiv' });
    const seg = await segment(ws.api, 'kyiv', { field: 'city', op: 'eq', value: 'Kyiv' });
    const tpl = await template(ws.api, 'email');
    const at = new Date(clock.now().getTime() + 3600_000).toISOString();
    const c = await ws.api.post('/v1/campaigns', { name: 'Later', channel: 'email', templateId: tpl, segmentIds: [seg], scheduledAt: at });
    expect(c.body).toMatchObject({ status: 'scheduled', scheduledAt: at });
    const other = (await ws.api.post('/v1/campaigns', { name: 'Cancelled', channel: 'email', templateId: tpl, segmentIds: [seg], scheduledAt: at })).body.id;
    expect((await ws.api.post(`/v1/campaigns/${other}/cancel`)).body.status).toBe('cancelled');
    expect(await service.rearmAll(server.deps)).toBeGreaterThanOrEqual(1);
    await service.tick({ ...server.deps, clock }, { resumeFanouts: false });
    expect((await ws.api.get(`/v1/campaigns/${c.body.id}`)).body.status).toBe('scheduled');
    clock.advance(3600_000 + 1);
    await service.tick({ ...server.deps, clock }, { resumeFanouts: false });
    expect((await ws.api.get(`/v1/campaigns/${c.body.id}`)).body.status).toBe('sending');
    await run(c.body.id);
    expect(mailsTo('later@sch.example')).toBe(1);
    expect((await ws.api.get(`/v1/campaigns/${other}`)).body.status).toBe('cancelled');
    clock.set('2026-03-02T12:00:00Z');
  });

  test('when the input is bad, then foreign segment 404, wrong-channel template 422, past scheduledAt 422, second send 409', async () => {
    const ws = await shop();
    const stranger = await shop();
    const foreign = await segment(stranger.api, 'theirs', { field: 'city', op: 'eq', value: 'X' });
    const mine = await segment(ws.api, 'mine', { field: 'city', op: 'eq', value: 'X' });
    const email = await template(ws.api, 'email');
    const sms = await template(ws.api, 'sms');
    expect((await ws.api.post('/v1/campaigns', { name: 'x', channel: 'email', templateId: email, segmentIds: [foreign] })).status).toBe(404);
    const wrong = await ws.api.post('/v1/campaigns', { name: 'x', channel: 'email', templateId: sms, segmentIds: [mine] });
    expect(wrong.status).toBe(422);
    expect(wrong.body.error?.details?.[0]?.path ?? wrong.body.details?.[0]?.path).toBe('templateId');
    expect((await ws.api.post('/v1/campaigns', { name: 'x', channel: 'email', templateId: email, segmentIds: [mine], scheduledAt: '2020-01-01T00:00:00Z' })).status).toBe(422);
    expect((await ws.api.post('/v1/campaigns', { name: 'x', channel: 'fax', templateId: email, segmentIds: [mine] })).status).toBe(400);
    const id = (await ws.api.post('/v1/campaigns', { name: 'x', channel: 'email', templateId: email, segmentIds: [mine] })).body.id;
    expect((await ws.api.post(`/v1/campaigns/${id}/schedule`, { at: '2020-01-01T00:00:00Z' })).status).toBe(422);
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(202);
    expect((await ws.api.post(`/v1/campaigns/${id}/send`)).status).toBe(409);
    expect((await stranger.api.get(`/v1/campaigns/${id}`)).status).toBe(404);
    expect((await stranger.api.post(`/v1/campaigns/${id}/send`)).status).toBe(404);
    expect((await ws.api.get('/v1/campaigns/not-a-uuid')).status).toBe(404);
    expect((await ws.api.get(`/v1/campaigns/${id}/messages?status=bogus`)).status).toBe(400);
  });
});
