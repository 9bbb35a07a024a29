import { createHash, createHmac } from 'node:crypto';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { signingSecret, signToken } from '../src/public/tokens';
import { fanOutEvents } from '../src/webhooks/service';
import { insertEndpoint } from '../src/webhooks/repo';
import { isSuppressed, suppress } from '../src/suppressions/repo';

/** Issue 15, security item 7: after DELETE /v1/customers/:externalId nothing but a keyed hash remains. */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer({ env: { HARK_SIGNING_SECRET: 'test-signing-secret-0123456789-abcdef' } });
});
afterAll(async () => srv.close());
const db = () => srv.deps.db;

/** Every text, json and array column of every table, as text, searched for each needle. */
async function tablesHolding(needles: string[]): Promise<string[]> {
  const { rows: cols } = await db().raw(
    `SELECT table_name, column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY')`,
  );
  const found: string[] = [];
  for (const { table_name: t, column_name: c } of cols as Array<{ table_name: string; column_name: string }>) {
    for (const n of needles) {
      const { rows } = await db().raw(`SELECT count(*)::int AS n FROM ?? WHERE strpos(lower(??::text), lower(?)) > 0`, [t, c, n]);
      if (rows[0].n > 0) found.push(`${t}.${c} holds ${n}`);
    }
  }
  return found;
}

test('when a customer who got, clicked and failed a message is erased, then no table holds their email, phone or externalId, and only keyed hashes remain', async () => {
  const ws = await newWorkspace(srv.url, 'erasure');
  const tag = ws.id.slice(0, 8);
  const email = `erase.${tag}@example.com`;
  // The scan below reads every workspace's rows, so the number must be one no other test holds: its
  // digits come from this workspace's id, and it is checked free first.
  const phone = `+1512555${String(parseInt(tag, 16) % 10000).padStart(4, '0')}`;
  const externalId = `erase-me-${tag}`;
  expect(await tablesHolding([phone, phone.slice(1)])).toEqual([]);
  const c = await ws.api.put(`/v1/customers/${externalId}`, { email, phone, firstName: 'Eve', emailConsent: 'subscribed', smsConsent: 'subscribed' });
  expect(c.status).toBe(201);
  const now = new Date();
  await insertEndpoint(db(), { workspace_id: ws.id, url: 'https://hooks.example.com/in', description: null, event_types: null, secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdHRlc3R0ZXN0' }, now);
  const [mail] = await db()('messages').insert({ workspace_id: ws.id, customer_id: c.body.id, channel: 'email', address: email, status: 'sent', sent_at: now }).returning('id');
  const [sms] = await db()('messages')
    .insert({ workspace_id: ws.id, customer_id: c.body.id, channel: 'sms', address: phone, status: 'failed', sent_at: now, error: `twilio 21211: the 'To' number ${phone} is not a valid phone number` })
    .returning('id');
  // A click on a link that carries the address, through the real redirect.
  const link = `https://shop.example.com/sale?email=${encodeURIComponent(email)}&id=${externalId}`;
  const click = await fetch(`${srv.url}/c/${signToken({ k: 'c', m: String(mail.id), u: link }, signingSecret(srv.deps.config))}`, { redirect: 'manual' });
  expect(click.status).toBe(302);
  await db()('message_events').insert({ workspace_id: ws.id, message_id: sms.id, type: 'failed', occurred_at: now, data: { errorCode: '21211' } });
  await fanOutEvents(db(), new Date(Date.now() + 60_000));
  // Before the erasure the data is where the test looks for it (the search can find it).
  const before = await tablesHolding([email, externalId]);
  expect(before).toEqual(expect.arrayContaining([expect.stringContaining('message_events.data'), expect.stringContaining('webhook_deliveries.payload')]));

  expect((await ws.api.delete(`/v1/customers/${externalId}`)).status).toBe(204);

  expect(await tablesHolding([email, phone, phone.slice(1), externalId])).toEqual([]);
  const { rows: key } = await db().raw("SELECT value FROM hark_secrets WHERE name = 'suppression_key'");
  const hmac = (a: string) => createHmac('sha256', Buffer.from(key[0].value, 'hex')).update(a).digest();
  const bare = (a: string) => createHash('sha256').update(a).digest();
  const entries = await db()('suppressions').where({ workspace_id: ws.id }).orderBy('channel');
  expect(entries.map((e) => [e.channel, e.reason])).toEqual([['email', 'erased'], ['sms', 'erased']]);
  expect(entries[0].address_hash.equals(hmac(email))).toBe(true);
  expect(entries[1].address_hash.equals(hmac(phone))).toBe(true);
  const { rows: bareLeft } = await db().raw('SELECT count(*)::int AS n FROM suppressions WHERE address_hash = ANY(?::bytea[])', [[bare(email), bare(phone)]]);
  expect(bareLeft[0].n).toBe(0);
  // The clicked event and the deliveries stay (counts, webhooks), without the address.
  expect(await db()('message_events').where({ message_id: mail.id, type: 'clicked' }).count({ n: '*' })).toEqual([{ n: '1' }]);
});

test('when a bare SHA-256 entry from before the keyed hashes exists, then it still suppresses, and suppressing that address again re-keys it', async () => {
  const ws = await newWorkspace(srv.url, 'legacy');
  const phone = '+15125550188';
  const bare = createHash('sha256').update(phone).digest();
  await db()('suppressions').insert({ workspace_id: ws.id, channel: 'sms', address_hash: bare, reason: 'sms_stop', legacy: true }); // as migration 0012 leaves one it could not re-key
  expect(await isSuppressed(db(), ws.id, 'sms', phone)).toBe(true);
  const again = await ws.api.put('/v1/customers/legacy-1', { phone });
  expect(again.body.suppressed).toEqual({ email: false, sms: true });
  await suppress(db(), ws.id, 'sms', phone, 'invalid_number');
  const rows = await db()('suppressions').where({ workspace_id: ws.id });
  expect(rows).toHaveLength(1);
  expect(rows[0].reason).toBe('sms_stop');
  expect(rows[0].address_hash.equals(bare)).toBe(false);
  expect(await isSuppressed(db(), ws.id, 'sms', phone)).toBe(true);
});

test('when a campaign fans out, then addresses on the list under the keyed hash or a legacy bare one are skipped as unsubscribed, and others are queued', async () => {
  const { runFanout } = await import('../src/campaigns/service');
  const ws = await newWorkspace(srv.url, 'fanout-suppressed');
  await ws.api.patch('/v1/settings', { fromEmail: 'shop@example.com', postalAddress: '1 Main St' });
  const tag = ws.id.slice(0, 8);
  const addr = (n: string) => `${n}.${tag}@example.com`;
  for (const n of ['keyed', 'legacy', 'free']) expect((await ws.api.put(`/v1/customers/${n}`, { email: addr(n), emailConsent: 'subscribed', city: 'Gent' })).status).toBe(201);
  await suppress(db(), ws.id, 'email', addr('keyed'), 'unsubscribed');
  await db()('suppressions').insert({ workspace_id: ws.id, channel: 'email', address_hash: createHash('sha256').update(addr('legacy')).digest(), reason: 'erased', legacy: true });
  const seg = (await ws.api.post('/v1/segments', { name: 'gent', definition: { field: 'city', op: 'eq', value: 'Gent' } })).body.id;
  const tpl = (await ws.api.post('/v1/templates', { name: 't', channel: 'email', subject: 'Hi', body: '<p>Sale</p>' })).body.id;
  const c = await ws.api.post('/v1/campaigns', { name: 'c', channel: 'email', templateId: tpl, segmentIds: [seg], scheduledAt: '2094-01-01T00:00:00Z' });
  expect(c.status).toBe(201);
  await db()('campaigns').where({ id: c.body.id }).update({ status: 'sending', started_at: new Date() });
  await runFanout(srv.deps, c.body.id);
  const rows = await db()('messages as m').join('customers as cu', 'cu.id', 'm.customer_id').where('m.campaign_id', c.body.id).select('cu.external_id', 'm.status', 'm.skip_reason').orderBy('cu.external_id');
  await ws.api.post(`/v1/campaigns/${c.body.id}/cancel`);
  expect(rows.map((r) => [r.external_id, r.status === 'skipped' ? r.skip_reason : 'queued'])).toEqual([['free', 'queued'], ['keyed', 'unsubscribed'], ['legacy', 'unsubscribed']]);
});
