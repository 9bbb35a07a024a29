import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { smsEncoding, smsSegments } from '../src/templates/sms';

let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const POSTAL = '12 Market Street, Springfield, IL 62701';
const MJML = `<mjml><mj-body><mj-section><mj-column>
<mj-text><h1>Hi {{ customer.firstName }}</h1><p>You spent {{ stats.totalSpent }} at {{ workspace.name }}.</p></mj-text>
<mj-button href="https://shop.example.com/sale">Shop the sale</mj-button>
</mj-column></mj-section></mj-body></mjml>`;

async function shop() {
  const ws = await newWorkspace(srv.url, 'Acme Shoes');
  expect((await ws.api.patch('/v1/settings', { postalAddress: POSTAL, fromEmail: 'news@acme.example', fromName: 'Acme' })).status).toBe(200);
  return ws;
}

describe('templates CRUD', () => {
  test('when an MJML email template is created, then it is stored with format mjml and can be listed, read, changed and deleted', async () => {
    const ws = await shop();
    const created = await ws.api.post('/v1/templates', { name: 'Sale', channel: 'email', subject: 'Hi {{ customer.firstName }}', body: MJML });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Sale', channel: 'email', format: 'mjml', subject: 'Hi {{ customer.firstName }}' });
    const id = created.body.id;
    expect((await ws.api.get(`/v1/templates/${id}`)).body.body).toBe(MJML);
    const list = await ws.api.get('/v1/templates?limit=10');
    expect(list.status).toBe(200);
    expect(list.body.data.map((t: any) => t.id)).toEqual([id]);
    expect(list.body.nextCursor).toBeNull();
    const patched = await ws.api.patch(`/v1/templates/${id}`, { name: 'Summer sale' });
    expect(patched.status).toBe(200);
    expect(patched.body.name).toBe('Summer sale');
    expect((await ws.api.delete(`/v1/templates/${id}`)).status).toBe(204);
    expect((await ws.api.get(`/v1/templates/${id}`)).status).toBe(404);
  });

  test('when another workspace asks for a template, then it is a 404', async () => {
    const a = await shop();
    const b = await shop();
    const t = await a.api.post('/v1/templates', { name: 'x', channel: 'sms', body: 'Hello' });
    expect((await b.api.get(`/v1/templates/${t.body.id}`)).status).toBe(404);
    expect((await b.api.patch(`/v1/templates/${t.body.id}`, { name: 'y' })).status).toBe(404);
    expect((await b.api.post(`/v1/templates/${t.body.id}/preview`, {})).status).toBe(404);
    expect((await b.api.get('/v1/templates/not-a-uuid')).status).toBe(404);
  });

  test.each([
    ['broken Liquid tag', { name: 'x', channel: 'email', subject: 'Hi', body: '<p>{% if customer.firstName %}open</p>', format: 'html' }],
    ['broken Liquid output', { name: 'x', channel: 'sms', body: 'Hi {{ customer.firstName ' }],
    ['unknown filter', { name: 'x', channel: 'sms', body: 'Hi {{ customer.firstName | nosuchfilter }}' }],
    ['invalid MJML', { name: 'x', channel: 'email', subject: 'Hi', body: '<mjml><mj-body><mj-section><mj-nonsense>x</mj-nonsense></mj-section></mj-body></mjml>' }],
    ['broken subject', { name: 'x', channel: 'email', subject: 'Hi {{', body: '<p>x</p>' }],
    ['file include', { name: 'x', channel: 'sms', body: "Hi {% include '/etc/passwd' %}" }],
  ])('when a template has a %s, then it is a 422 and nothing is stored', async (_what, body) => {
    const ws = await shop();
    const res = await ws.api.post('/v1/templates', body);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('unprocessable');
    expect((await ws.api.get('/v1/templates')).body.data).toHaveLength(0);
  });

  test('when a patch breaks a stored template, then it is a 422 and the stored body is unchanged', async () => {
    const ws = await shop();
    const t = await ws.api.post('/v1/templates', { name: 'x', channel: 'sms', body: 'Hello {{ customer.firstName }}' });
    expect((await ws.api.patch(`/v1/templates/${t.body.id}`, { body: 'Hello {% for %}' })).status).toBe(422);
    expect((await ws.api.get(`/v1/templates/${t.body.id}`)).body.body).toBe('Hello {{ customer.firstName }}');
  });

  test('when a template is used by a campaign (main or variant), then DELETE is a 409 and it stays', async () => {
    const ws = await shop();
    const main = await ws.api.post('/v1/templates', { name: 'a', channel: 'sms', body: 'A' });
    const variant = await ws.api.post('/v1/templates', { name: 'b', channel: 'sms', body: 'B' });
    await srv.deps.db('campaigns').insert({
      workspace_id: ws.id, name: 'c', channel: 'sms', template_id: main.body.id, segment_ids: [], status: 'draft',
      variants: JSON.stringify([{ key: 'B', templateId: variant.body.id, weight: 50 }]),
    });
    expect((await ws.api.delete(`/v1/templates/${main.body.id}`)).status).toBe(409);
    expect((await ws.api.delete(`/v1/templates/${variant.body.id}`)).status).toBe(409);
    expect((await ws.api.get(`/v1/templates/${variant.body.id}`)).status).toBe(200);
  });

  test('when the shape is wrong (email without subject, sms with subject, unknown field), then 400', async () => {
    const ws = await shop();
    expect((await ws.api.post('/v1/templates', { name: 'x', channel: 'email', body: '<p>x</p>' })).status).toBe(400);
    expect((await ws.api.post('/v1/templates', { name: 'x', channel: 'sms', subject: 's', body: 'x' })).status).toBe(400);
    expect((await ws.api.post('/v1/templates', { name: 'x', channel: 'fax', body: 'x' })).status).toBe(400);
    expect((await ws.api.post('/v1/templates', { name: 'x', channel: 'sms', body: 'x', extra: 1 })).status).toBe(400);
  });
});

describe('POST /v1/templates/:id/preview', () => {
  test('when an MJML email is previewed for a customer, then Liquid sees customer, stats and workspace, and a text part, unsubscribe link and postal address are added', async () => {
    const ws = await shop();
    expect((await ws.api.put('/v1/customers/c-1', { email: 'ann@example.com', firstName: 'Ann <b>' })).status).toBe(201);
    expect((await ws.api.post('/v1/purchases', { orderId: 'o-1', customer: { externalId: 'c-1' }, total: 42.5, occurredAt: new Date().toISOString() })).status).toBeLessThan(300);
    const t = await ws.api.post('/v1/templates', { name: 'Sale', channel: 'email', subject: 'Hi {{ customer.firstName }}', body: MJML });
    const res = await ws.api.post(`/v1/templates/${t.body.id}/preview`, { customerExternalId: 'c-1' });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(['html', 'subject', 'text']);
    expect(res.body.subject).toBe('Hi Ann <b>');
    // HTML output is escaped; the text part is not.
    expect(res.body.html).toContain('Hi Ann &lt;b&gt;');
    expect(res.body.html).toContain('You spent 42.5 at Acme Shoes.');
    expect(res.body.html).toMatch(/<a [^>]*href="[^"]*\/u\/[^"]*"[^>]*>Unsubscribe<\/a>/);
    expect(res.body.html).toContain(POSTAL);
    expect(res.body.text).toContain('Hi Ann <b>');
    expect(res.body.text).toContain('You spent 42.5 at Acme Shoes.');
    expect(res.body.text).toContain(POSTAL);
    expect(res.body.text).toMatch(/Unsubscribe: \S+\/u\//);
    expect(res.body.text).not.toMatch(/<(p|div|table)\b/);
  });

  test('when an HTML template already has the unsubscribe link and address, then no footer is added', async () => {
    const ws = await shop();
    const body = '<html><body><p>Hello {{ customer.firstName }}</p><p>{{ workspace.postalAddress }}</p><a href="{{ unsubscribeUrl }}">Leave</a></body></html>';
    const t = await ws.api.post('/v1/templates', { name: 'x', channel: 'email', subject: 'S', body });
    expect(t.body.format).toBe('html');
    const res = await ws.api.post(`/v1/templates/${t.body.id}/preview`, {});
    expect(res.status).toBe(200);
    expect(res.body.html).toContain('Hello Alex');
    expect(res.body.html).not.toContain('hark-footer');
    expect(res.body.html.split(POSTAL)).toHaveLength(2);
    expect(res.body.html).toMatch(/<a href="[^"]*\/u\/[^"]*">Leave<\/a>/);
  });

  test('when an SMS is previewed, then encoding and segments follow GSM-7 / UCS-2 rules and an opt-out line is present', async () => {
    const ws = await shop();
    const gsm = await ws.api.post('/v1/templates', { name: 'a', channel: 'sms', body: 'Hi {{ customer.firstName }}, 20% off today' });
    const r1 = await ws.api.post(`/v1/templates/${gsm.body.id}/preview`, {});
    expect(r1.body).toEqual({ text: 'Hi Alex, 20% off today\nReply STOP to opt out', encoding: 'GSM-7', segments: 1 });
    const uni = await ws.api.post('/v1/templates', { name: 'b', channel: 'sms', body: `${'Ж'.repeat(60)} reply STOP to end` });
    const r2 = await ws.api.post(`/v1/templates/${uni.body.id}/preview`, {});
    expect(r2.body).toMatchObject({ encoding: 'UCS-2', segments: 2 });
    expect(r2.body.text).not.toContain('Reply STOP to opt out');
  });

  test('when the preview names an unknown customer, then 404', async () => {
    const ws = await shop();
    const t = await ws.api.post('/v1/templates', { name: 'a', channel: 'sms', body: 'Hi' });
    expect((await ws.api.post(`/v1/templates/${t.body.id}/preview`, { customerExternalId: 'nobody' })).status).toBe(404);
  });
});

describe('SMS segment counting', () => {
  test('when texts sit on the GSM-7 and UCS-2 boundaries, then segments match 160/153 and 70/67', () => {
    expect(smsSegments('a'.repeat(160))).toBe(1);
    expect(smsSegments('a'.repeat(161))).toBe(2);
    expect(smsSegments('a'.repeat(306))).toBe(2);
    expect(smsSegments('a'.repeat(307))).toBe(3);
    // Extension characters cost two septets.
    expect(smsEncoding('€'.repeat(80))).toBe('GSM-7');
    expect(smsSegments('€'.repeat(80))).toBe(1);
    expect(smsSegments('€'.repeat(81))).toBe(2);
    expect(smsEncoding('ж')).toBe('UCS-2');
    expect(smsSegments('ж'.repeat(70))).toBe(1);
    expect(smsSegments('ж'.repeat(71))).toBe(2);
    expect(smsSegments('ж'.repeat(134))).toBe(2);
    expect(smsSegments('ж'.repeat(135))).toBe(3);
  });
});
