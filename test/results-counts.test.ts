import twilio from 'twilio';
import { campaignCounts } from '../src/campaigns/repo';
import { newWorkspace } from './helpers/api';
import { customerId, makeCampaign } from './helpers/results-factory';
import { startTestServer, TestServer } from './helpers/server';

/**
 * Campaign counts against the message rows while Twilio status callbacks for the same messages
 * arrive concurrently, duplicated and out of order (as Twilio retries do).
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => srv.close());

const N = 40;
const STATUSES = ['sent', 'delivered', 'undelivered', 'failed', 'sent', 'delivered'];

test('when many status callbacks race, then counts equal a GROUP BY over the messages and each message has one terminal event', async () => {
  const ws = await newWorkspace(srv.url);
  const db = srv.deps.db;
  const cid = await makeCampaign(db, ws.id, { startedAt: new Date(), channel: 'sms' });
  const sent = new Date();
  for (let i = 0; i < N; i++) {
    await ws.api.put(`/v1/customers/cnt-${i}`, { phone: `+3361234${String(i).padStart(4, '0')}` });
    await db('messages').insert({
      workspace_id: ws.id, campaign_id: cid, customer_id: await customerId(db, ws.id, `cnt-${i}`), channel: 'sms',
      address: `+3361234${String(i).padStart(4, '0')}`, status: 'sent', sent_at: sent, provider_id: `SMcnt${ws.id.slice(0, 8)}${i}`,
    });
  }
  // Every message gets a shuffled mix of callbacks; message i skips the terminal ones when i % 5 == 0.
  const base = srv.deps.config.PUBLIC_URL.replace(/\/+$/, '') + '/webhooks/twilio/status';
  const calls: Array<Record<string, string>> = [];
  for (let i = 0; i < N; i++) {
    for (const s of i % 5 === 0 ? ['sent', 'sent'] : STATUSES) calls.push({ MessageSid: `SMcnt${ws.id.slice(0, 8)}${i}`, MessageStatus: s, ...(s === 'failed' ? { ErrorCode: '30003' } : {}) });
  }
  calls.sort(() => Math.random() - 0.5);
  const results = await Promise.all(
    calls.map(async (params) => {
      const signature = twilio.getExpectedTwilioSignature(srv.deps.config.TWILIO_AUTH_TOKEN!, base, params);
      const res = await fetch(`${srv.url}/webhooks/twilio/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature }, body: new URLSearchParams(params).toString() });
      return res.status;
    }),
  );
  expect(results.every((s) => s === 204)).toBe(true);

  const { rows } = await db.raw(
    `SELECT count(*)::int AS targeted, count(sent_at)::int AS sent, count(delivered_at)::int AS delivered,
            count(*) FILTER (WHERE status = 'failed')::int AS failed, count(*) FILTER (WHERE status = 'sent')::int AS still_sent
       FROM messages WHERE campaign_id = ?`,
    [cid],
  );
  const truth = rows[0];
  const counts = await campaignCounts(db, cid);
  expect(counts).toEqual(expect.objectContaining({ targeted: truth.targeted, sent: truth.sent, delivered: truth.delivered, failed: truth.failed }));
  expect(truth.targeted).toBe(N);
  expect(truth.still_sent).toBe(N / 5); // only the messages that got no terminal callback
  expect(truth.delivered + truth.failed).toBe(N - N / 5);
  // delivered and failed are terminal: whichever won the race, it is the only terminal event.
  const ev = await db.raw(
    `SELECT m.id, m.status, count(e.id) FILTER (WHERE e.type IN ('delivered', 'failed'))::int AS terminal,
            bool_and(e.type = m.status) FILTER (WHERE e.type IN ('delivered', 'failed')) AS agrees
       FROM messages m LEFT JOIN message_events e ON e.message_id = m.id WHERE m.campaign_id = ? GROUP BY m.id, m.status`,
    [cid],
  );
  for (const r of ev.rows) {
    expect(r.terminal).toBe(r.status === 'sent' ? 0 : 1);
    if (r.terminal) expect(r.agrees).toBe(true);
  }
});
