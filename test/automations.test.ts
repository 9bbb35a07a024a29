import { customerWithHistory, DAY, HOUR, Kit, messagesOf, segment, shop, starter, startKit } from './helpers/automations-kit';

/** The win-back flow end to end: entry, email, a week's wait, SMS, exits, re-entry, quiet hours, cap. */
describe('automations: win-back flows', () => {
  let kit: Kit;
  beforeAll(async () => {
    kit = await startKit('2026-11-02T15:00:00Z');
  });
  afterAll(async () => kit?.close());

  async function winBack(settings: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) {
    const ws = await shop(kit, settings);
    const t = await starter(ws.api);
    const segmentId = await segment(kit, ws.api, ws.id, { preset: 'fading' });
    const body = {
      name: 'Win back the fading',
      trigger: { type: 'segmentEntry', segmentId },
      schedule: '0 9 * * *',
      steps: [
        { type: 'send', channel: 'email', templateId: t['win-back-email'] },
        { type: 'wait', hours: 168 },
        { type: 'send', channel: 'sms', templateId: t['win-back-sms'] },
      ],
      exitWhen: 'purchased',
      reentryAfterDays: null,
      enabled: true,
      ...extra,
    };
    const a = await ws.api.post('/v1/automations', body);
    expect(a.status).toBe(201);
    return { ws, t, segmentId, automationId: a.body.id as string };
  }

  test('when a customer fades, then the email goes out at entry and the SMS after the wait', async () => {
    const { ws, automationId } = await winBack();
    const fading = await customerWithHistory(kit, ws.api, 'fade-1', 90);
    await customerWithHistory(kit, ws.api, 'loyal-1', 3);
    const run = await ws.api.post(`/v1/automations/${automationId}/run`);
    expect(run.body).toEqual({ entered: 1 });
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    const mails = kit.smtp.received.filter((m) => m.envelopeTo.includes(fading.email));
    expect(mails).toHaveLength(1);
    expect(kit.twilio.messages.filter((m) => m.To === fading.phone)).toHaveLength(0);

    kit.clock.advance(167 * HOUR);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    expect(kit.twilio.messages.filter((m) => m.To === fading.phone)).toHaveLength(0);
    kit.clock.advance(1 * HOUR);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    const sms = kit.twilio.messages.filter((m) => m.To === fading.phone);
    expect(sms).toHaveLength(1);
    expect(sms[0]!.Body).toContain('we miss you');

    const after = await ws.api.get(`/v1/automations/${automationId}`);
    expect(after.body.counts.entered).toBe(1);
    expect(after.body.counts.completed).toBe(1);
    expect(after.body.counts.steps.map((s: { sent: number }) => s.sent)).toEqual([1, 0, 1]);
    const listed = await ws.api.get(`/v1/messages?automationId=${automationId}`);
    expect(listed.status).toBe(200);
    expect(listed.body.data.map((m: { automationId: string; channel: string }) => [m.automationId, m.channel]).sort()).toEqual([
      [automationId, 'email'],
      [automationId, 'sms'],
    ]);
  });

  test('when a customer buys during the wait, then no SMS follows and the queued one is withdrawn', async () => {
    const { ws, automationId } = await winBack();
    const buyer = await customerWithHistory(kit, ws.api, 'fade-buyer', 90);
    const stays = await customerWithHistory(kit, ws.api, 'fade-stays', 90);
    expect((await ws.api.post(`/v1/automations/${automationId}/run`)).body).toEqual({ entered: 2 });
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    kit.clock.advance(3 * DAY);
    const p = await ws.api.post('/v1/purchases', { orderId: 'back-again', customer: { externalId: buyer.externalId }, occurredAt: kit.clock.now().toISOString(), total: 25 });
    expect(p.status).toBe(201);
    kit.clock.advance(4 * DAY);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    expect(kit.twilio.messages.filter((m) => m.To === buyer.phone)).toHaveLength(0);
    expect(kit.twilio.messages.filter((m) => m.To === stays.phone)).toHaveLength(1);
    const got = await ws.api.get(`/v1/automations/${automationId}`);
    expect(got.body.counts.exited).toBe(1);
    expect(got.body.counts.steps[1].exited).toBe(1);
  });

  test('when a customer leaves and comes back into the segment, then re-entry honours reentryAfterDays', async () => {
    const w = await shop(kit);
    const t = await starter(w.api);
    const segmentId = await segment(kit, w.api, w.id, { field: 'attributes.tier', op: 'eq', value: 'lapsed' });
    const a = await w.api.post('/v1/automations', { name: 'tiered', trigger: { type: 'segmentEntry', segmentId }, steps: [{ type: 'send', channel: 'email', templateId: t['win-back-email'] }], reentryAfterDays: 10, enabled: true });
    expect(a.status).toBe(201);
    const id = a.body.id;
    await w.api.put('/v1/customers/re-1', { email: 're-1@example.com', emailConsent: 'subscribed', attributes: { tier: 'lapsed' } });
    const cycle = async (tier: string) => {
      await w.api.put('/v1/customers/re-1', { attributes: { tier } });
      return (await w.api.post(`/v1/automations/${id}/run`)).body.entered;
    };
    expect(await cycle('lapsed')).toBe(1);
    await kit.walk(id); // sends and completes the first walk
    kit.clock.advance(2 * DAY);
    expect(await cycle('active')).toBe(0); // left the segment
    expect(await cycle('lapsed')).toBe(0); // back in after 2 days: too soon
    kit.clock.advance(9 * DAY);
    expect(await cycle('lapsed')).toBe(0); // still in: not a new entry
    expect(await cycle('active')).toBe(0);
    expect(await cycle('lapsed')).toBe(1); // 11 days after the first entry
    await kit.walk(id);
    await kit.dispatch(w.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes('re-1@example.com'))).toHaveLength(2);
  });

  test('when a send falls due at 23:00 local time, then it goes out at the end of quiet hours', async () => {
    kit.clock.set('2026-11-10T22:00:00Z'); // 23:00 in Paris (UTC+1)
    const { ws, automationId } = await winBack({ quietHours: { start: '21:00', end: '08:00' } });
    const c = await customerWithHistory(kit, ws.api, 'night-owl', 90, { timezone: 'Europe/Paris' });
    await ws.api.post(`/v1/automations/${automationId}/run`);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(c.email))).toHaveLength(0);
    const [m] = await messagesOf(kit, automationId);
    expect(new Date(m.send_after).toISOString()).toBe('2026-11-11T07:00:00.000Z');
    kit.clock.set('2026-11-11T06:59:00Z');
    await kit.dispatch(ws.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(c.email))).toHaveLength(0);
    kit.clock.set('2026-11-11T07:00:00Z');
    await kit.dispatch(ws.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(c.email))).toHaveLength(1);
  });

  test('when a campaign already reached the frequency cap, then the automation message is skipped for it', async () => {
    const { ws, t, automationId } = await winBack({ frequencyCap: { maxMessages: 1, perDays: 7 } });
    const capped = await customerWithHistory(kit, ws.api, 'cap-1', 90);
    const free = await customerWithHistory(kit, ws.api, 'cap-2', 90);
    // A campaign message delivered to cap-1 yesterday (stored as campaigns dispatch would store it).
    const customer = await kit.deps.db('customers').where({ workspace_id: ws.id, external_id: capped.externalId }).first('id');
    const [campaign] = await kit.deps.db('campaigns').insert({ workspace_id: ws.id, name: 'promo', channel: 'email', template_id: t['win-back-email'], segment_ids: [], status: 'sent' }).returning('id');
    const sentAt = new Date(kit.clock.now().getTime() - DAY);
    await kit.deps.db('messages').insert({ workspace_id: ws.id, campaign_id: campaign.id, customer_id: customer.id, channel: 'email', address: capped.email, status: 'delivered', created_at: sentAt, sent_at: sentAt });
    await ws.api.post(`/v1/automations/${automationId}/run`);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(capped.email))).toHaveLength(0);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(free.email))).toHaveLength(1);
    const skipped = (await messagesOf(kit, automationId)).filter((m) => m.status === 'skipped');
    expect(skipped.map((m) => m.skip_reason)).toEqual(['frequency_cap']);
  });

  test('when the automation is disabled mid-flow, then nothing more is sent', async () => {
    const { ws, automationId } = await winBack();
    const c = await customerWithHistory(kit, ws.api, 'mid-1', 90);
    await ws.api.post(`/v1/automations/${automationId}/run`);
    await kit.walk(automationId);
    await kit.dispatch(ws.id);
    expect(kit.smtp.received.filter((m) => m.envelopeTo.includes(c.email))).toHaveLength(1);
    const off = await ws.api.patch(`/v1/automations/${automationId}`, { enabled: false });
    expect(off.status).toBe(200);
    expect(off.body.enabled).toBe(false);
    expect(off.body.counts.cancelled).toBe(1);
    kit.clock.advance(8 * DAY);
    await kit.walk();
    await kit.dispatch(ws.id);
    expect(kit.twilio.messages.filter((m) => m.To === c.phone)).toHaveLength(0);
    expect((await ws.api.post(`/v1/automations/${automationId}/run`)).status).toBe(409);
    expect(await kit.evaluate(automationId)).toMatchObject({ entered: 0 });
  });
});
