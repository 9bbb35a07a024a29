import { loadConfig } from '../src/config';
import { createDb } from '../src/db';
import { resolveSecrets } from '../src/secrets';
import { legacyDerivedSecret, signingSecret, signToken } from '../src/public/tokens';
import { startTestServer, TestServer } from './helpers/server';
import { newWorkspace } from './helpers/api';
import { OPERATOR_TOKEN, TEST_DATABASE_URL } from './helpers/env';

/** Issue 15, security item 2: the link-signing secret is never derived from the operator token. */
// SMTP_URL, which production also requires, is given, so each case is about the signing secret.
const base = { DATABASE_URL: TEST_DATABASE_URL, HARK_ADMIN_TOKEN: OPERATOR_TOKEN, SMTP_URL: 'smtp://127.0.0.1:2525' };

describe('HARK_SIGNING_SECRET', () => {
  test('when NODE_ENV is production and it is unset or short, then boot stops naming it', () => {
    expect(() => loadConfig({ ...base, NODE_ENV: 'production' })).toThrow(/HARK_SIGNING_SECRET is required in production/);
    expect(() => loadConfig({ ...base, NODE_ENV: 'production', HARK_SIGNING_SECRET: 'x'.repeat(31) })).toThrow(/HARK_SIGNING_SECRET must be at least 32 characters/);
    expect(loadConfig({ ...base, NODE_ENV: 'production', HARK_SIGNING_SECRET: 'x'.repeat(32) }).HARK_SIGNING_SECRET).toBe('x'.repeat(32));
  });

  test('when it is unset in development, then one is generated once, kept in the database and shared, and it is not derived from the operator token', async () => {
    const db1 = createDb(TEST_DATABASE_URL, 1);
    const db2 = createDb(TEST_DATABASE_URL, 1);
    try {
      const a = await resolveSecrets(loadConfig({ ...base, NODE_ENV: 'development' }), db1);
      const b = await resolveSecrets(loadConfig({ ...base, NODE_ENV: 'development', HARK_ADMIN_TOKEN: 'another-operator-token-xyz' }), db2);
      expect(signingSecret(a).length).toBeGreaterThanOrEqual(32);
      expect(signingSecret(b)).toBe(signingSecret(a)); // a second process, a restart: the same key
      expect(signingSecret(a)).not.toBe(legacyDerivedSecret(OPERATOR_TOKEN));
      const row = await db1('hark_secrets').where({ name: 'signing_secret' }).first('value');
      expect(row.value).toBe(signingSecret(a));
    } finally {
      await Promise.all([db1.destroy(), db2.destroy()]);
    }
  });
});

describe('links signed before the upgrade', () => {
  let srv: TestServer;
  const upgradedAt = new Date(Date.now() - 10 * 86400_000);
  beforeAll(async () => {
    srv = await startTestServer({ env: { HARK_SIGNING_SECRET: 'current-signing-secret-0123456789-abcdef' } });
    await srv.deps.db('hark_secrets').insert({ name: 'legacy_links_before', value: upgradedAt.toISOString() }).onConflict('name').merge();
  });
  afterAll(async () => {
    await srv.deps.db('hark_secrets').where({ name: 'legacy_links_before' }).del();
    await srv.close();
  });

  test('when a link was signed under the old derived key before the upgrade, then it still works; one dated after the upgrade does not', async () => {
    const ws = await newWorkspace(srv.url, 'legacy links');
    const [m] = await srv.deps.db('messages').insert({ workspace_id: ws.id, channel: 'email', address: 'old@example.com', status: 'sent', sent_at: new Date() }).returning('id');
    const old = legacyDerivedSecret(OPERATOR_TOKEN);
    const before = signToken({ k: 'u', m: String(m.id) }, old, new Date(upgradedAt.getTime() - 86400_000));
    const after = signToken({ k: 'u', m: String(m.id) }, old, new Date(upgradedAt.getTime() + 86400_000));
    const current = signToken({ k: 'u', m: String(m.id) }, signingSecret(srv.deps.config));
    expect((await fetch(`${srv.url}/u/${before}`)).status).toBe(200);
    expect((await fetch(`${srv.url}/u/${after}`)).status).toBe(400);
    expect((await fetch(`${srv.url}/u/${current}`)).status).toBe(200);
  });
});

describe('rotating HARK_SIGNING_SECRET', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startTestServer({ env: { HARK_SIGNING_SECRET: 'the-new-signing-secret-0123456789-abcdef', HARK_SIGNING_SECRET_PREVIOUS: 'the-old-signing-secret-0123456789-abcdef' } });
  });
  afterAll(async () => srv.close());

  test('when the old secret is kept as HARK_SIGNING_SECRET_PREVIOUS, then links it signed still work, and other keys do not', async () => {
    const ws = await newWorkspace(srv.url, 'rotation');
    const [m] = await srv.deps.db('messages').insert({ workspace_id: ws.id, channel: 'email', address: 'rot@example.com', status: 'sent', sent_at: new Date() }).returning('id');
    const signed = (secret: string) => signToken({ k: 'u', m: String(m.id) }, secret);
    expect((await fetch(`${srv.url}/u/${signed('the-old-signing-secret-0123456789-abcdef')}`)).status).toBe(200);
    expect((await fetch(`${srv.url}/u/${signed('the-new-signing-secret-0123456789-abcdef')}`)).status).toBe(200);
    expect((await fetch(`${srv.url}/u/${signed('some-other-signing-secret-0123456789-abc')}`)).status).toBe(400);
  });
});
