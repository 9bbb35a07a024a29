import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { setConsent } from '../src/public/repo';
import { countQuery, membersQuery } from '../src/segments/service';
import type { SegmentNode } from '../src/segments/schema';

/**
 * customer_stats carries copies of birth_date, country, email_consent, sms_consent and gender
 * (migration 0023) that segment counts read instead of joining customers (src/segments/count.ts).
 * Every write path must leave them equal to the customer's: the triggers keep them, whoever writes.
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startTestServer();
});
afterAll(async () => {
  await srv.close();
});

const COLS = ['birth_date', 'country', 'email_consent', 'sms_consent', 'gender'] as const;

/** The workspace's customers whose stats copies differ from their profile, and those without a stats row. */
async function drift(workspaceId: string) {
  const { rows } = await srv.deps.db.raw(
    `SELECT c.external_id, s.customer_id IS NULL AS no_stats FROM customers c LEFT JOIN customer_stats s ON s.customer_id = c.id AND s.workspace_id = c.workspace_id
      WHERE c.workspace_id = ? AND (s.customer_id IS NULL OR (${COLS.map((k) => `c.${k}`).join(', ')}) IS DISTINCT FROM (${COLS.map((k) => `s.${k}`).join(', ')}))`,
    [workspaceId],
  );
  return rows as Array<{ external_id: string; no_stats: boolean }>;
}

const copyOf = async (workspaceId: string, externalId: string) =>
  srv.deps.db('customer_stats as s').join('customers as c', 'c.id', 's.customer_id').where({ 'c.workspace_id': workspaceId, 'c.external_id': externalId }).first(...COLS.map((k) => `s.${k}`));

test('when customers are created and changed through the API, the batch endpoints, consent changes and purchases, then the stats copies follow', async () => {
  const ws = await newWorkspace(srv.url);
  // API: create, then change every copied field, then clear some.
  expect((await ws.api.put('/v1/customers/a-1', { country: 'us', birthDate: '1980-05-04', gender: 'female', emailConsent: 'subscribed', smsConsent: 'unsubscribed' })).status).toBe(201);
  expect(await copyOf(ws.id, 'a-1')).toMatchObject({ country: 'US', gender: 'female', email_consent: 'subscribed', sms_consent: 'unsubscribed' });
  expect((await ws.api.put('/v1/customers/a-1', { country: 'DE', birthDate: '1990-01-02', gender: 'male', emailConsent: 'unsubscribed', smsConsent: 'subscribed' })).status).toBe(200);
  expect(await copyOf(ws.id, 'a-1')).toMatchObject({ country: 'DE', gender: 'male', email_consent: 'unsubscribed', sms_consent: 'subscribed' });
  expect((await ws.api.put('/v1/customers/a-1', { country: null, gender: null })).status).toBe(200);
  expect(await copyOf(ws.id, 'a-1')).toMatchObject({ country: null, gender: null, email_consent: 'unsubscribed' });
  // The customers batch endpoint: one update, one creation.
  const batch = await ws.api.post('/v1/customers/batch', { customers: [{ externalId: 'a-1', country: 'FR' }, { externalId: 'b-1', country: 'GB', birthDate: '1975-12-31', emailConsent: 'subscribed' }] });
  expect(batch.body).toMatchObject({ created: 1, updated: 1 });
  expect(await copyOf(ws.id, 'a-1')).toMatchObject({ country: 'FR' });
  expect(await copyOf(ws.id, 'b-1')).toMatchObject({ country: 'GB', email_consent: 'subscribed' });
  // A purchase naming a new customer creates it (identity resolution) with its stats row.
  const bought = await ws.api.post('/v1/purchases/batch', {
    purchases: [{ orderId: 'o-1', customer: { externalId: 'p-1', email: 'p1@example.com' }, occurredAt: '2026-01-01T00:00:00Z', total: 10, items: [{ sku: 's', quantity: 1, unitPrice: 10 }] }],
  });
  expect(bought.body).toMatchObject({ accepted: 1 });
  expect((await ws.api.put('/v1/customers/p-1', { country: 'SE' })).status).toBe(200);
  // Consent withdrawn outside the customer API (one-click unsubscribe, STOP replies).
  const b1 = await srv.deps.db('customers').where({ workspace_id: ws.id, external_id: 'b-1' }).first('id');
  expect(await setConsent(srv.deps.db, ws.id, [String(b1.id)], 'email', 'unsubscribed', new Date())).toBe(1);
  expect(await copyOf(ws.id, 'b-1')).toMatchObject({ email_consent: 'unsubscribed' });
  expect(await drift(ws.id)).toEqual([]);

  // A count over stats alone (country, age and consent are read from the copies) equals the members query.
  const rule: SegmentNode = { all: [{ field: 'country', op: 'in', value: ['SE', 'FR'] }, { field: 'purchaseCount', op: 'gte', value: 1 }] };
  const now = new Date();
  const members = (await membersQuery(srv.deps.db, ws.id, rule, now)).length;
  expect(members).toBe(1);
  expect(Number((await countQuery(srv.deps.db, ws.id, rule, now).first())?.n)).toBe(members);
  expect(countQuery(srv.deps.db, ws.id, rule, now).toSQL().sql).not.toMatch(/"customers"/);

  // Erasure: the customer and its stats row (with the copies) go together.
  expect((await ws.api.delete('/v1/customers/b-1')).status).toBe(204);
  expect(await srv.deps.db('customer_stats').where({ customer_id: b1.id }).first()).toBeUndefined();
  expect(await drift(ws.id)).toEqual([]);
});

test('when a plain UPDATE of customers changes a copied column (as imports and connectors write), then only that customer\'s copy changes', async () => {
  const ws = await newWorkspace(srv.url);
  await ws.api.post('/v1/customers/batch', { customers: [{ externalId: 'x-1', country: 'US' }, { externalId: 'x-2', country: 'US' }] });
  await srv.deps.db('customers').where({ workspace_id: ws.id, external_id: 'x-1' }).update({ country: 'NL', birth_date: '2001-02-03', sms_consent: 'subscribed' });
  expect(await copyOf(ws.id, 'x-1')).toMatchObject({ country: 'NL', sms_consent: 'subscribed' });
  expect(await copyOf(ws.id, 'x-2')).toMatchObject({ country: 'US', sms_consent: null });
  expect(await drift(ws.id)).toEqual([]);
});
