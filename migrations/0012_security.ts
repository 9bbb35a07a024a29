import { createHmac, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';

/**
 * Security hardening (issue 15).
 *
 * - `hark_secrets`: server-side secrets that every process of an installation must share: the
 *   key of the suppression hashes (made here, once) and, outside production, the generated
 *   public-link signing secret (made at first boot, src/secrets.ts).
 * - `hark_address_hash(text)`: HMAC-SHA256 of a normalised address under that key. Suppression
 *   entries were a bare SHA-256, and a phone number's SHA-256 is reversed by hashing every number
 *   of a numbering plan (10^10 hashes: minutes on one GPU). The HMAC is written out with
 *   Postgres's own sha256() (RFC 2104: H(K^opad || H(K^ipad || m)), the key padded to the block),
 *   so no extension is needed, and the function is one SQL expression that the planner inlines
 *   into the fan-out's per-row check. STABLE, as convert_to() is: an IMMUTABLE wrapper around a
 *   STABLE body is not inlined, and a called SQL function cost 3x the inlined expression.
 * - Existing entries are re-keyed where the address is still known (a customer or a message
 *   holds it). Entries of addresses hark no longer holds (customers erased before this
 *   migration) cannot be re-keyed, having no plaintext; they stay as they are and are still
 *   honoured (the checks match the keyed or the bare hash), so an erased person is never messaged.
 * - `twilio_inbound`: MessageSids of inbound SMS already applied, so that a replayed START/STOP
 *   applies once.
 * - `legacy_links_before`: on an installation that has sent messages, public links signed before
 *   this version (possibly under the key derived from HARK_ADMIN_TOKEN) keep working for the 60
 *   days the contract promises (src/public/tokens.ts).
 */
const BLOCK = 64;

function hmacFunctionSql(key: Buffer): string {
  const k = Buffer.alloc(BLOCK);
  key.copy(k);
  const ipad = Buffer.from(k.map((b) => b ^ 0x36));
  const opad = Buffer.from(k.map((b) => b ^ 0x5c));
  return `CREATE OR REPLACE FUNCTION hark_address_hash(addr text) RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT sha256('\\x${opad.toString('hex')}'::bytea || sha256('\\x${ipad.toString('hex')}'::bytea || convert_to(addr, 'UTF8')))
  $$`;
}

/** Every address a workspace still holds, normalised as the suppression checks normalise them. */
const KNOWN_ADDRESSES = `
  SELECT workspace_id, 'email' AS channel, lower(btrim(email)) AS addr FROM customers WHERE email IS NOT NULL
  UNION SELECT workspace_id, 'sms', btrim(phone) FROM customers WHERE phone IS NOT NULL
  UNION SELECT workspace_id, channel, CASE WHEN channel = 'email' THEN lower(btrim(address)) ELSE btrim(address) END FROM messages WHERE address IS NOT NULL`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('hark_secrets', (t) => {
    t.text('name').primary();
    t.text('value').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  const key = randomBytes(32);
  await knex('hark_secrets').insert({ name: 'suppression_key', value: key.toString('hex') });
  await knex.raw(hmacFunctionSql(key));
  // Self-check: the SQL form is HMAC-SHA256 as Node computes it.
  const probe = 'probe@example.com';
  const { rows } = await knex.raw('SELECT hark_address_hash(?) AS h', [probe]);
  if (!(rows[0].h as Buffer).equals(createHmac('sha256', key).update(probe).digest())) throw new Error('hark_address_hash is not HMAC-SHA256');

  // Every entry so far is a bare hash; those re-keyed below stop being legacy. Checks probe the
  // bare form only while some legacy entry exists (suppressions/repo.ts, suppressedSql).
  await knex.schema.alterTable('suppressions', (t) => {
    t.boolean('legacy').notNullable().defaultTo(false);
  });
  await knex('suppressions').update({ legacy: true });
  await knex.raw('CREATE INDEX suppressions_legacy ON suppressions (workspace_id) WHERE legacy');
  await knex.raw(`UPDATE suppressions s SET address_hash = hark_address_hash(k.addr), legacy = false
                    FROM (${KNOWN_ADDRESSES}) k
                   WHERE s.workspace_id = k.workspace_id AND s.channel = k.channel AND s.address_hash = sha256(convert_to(k.addr, 'UTF8'))`);

  const sent = await knex('messages').whereNotNull('sent_at').first('id');
  if (sent) await knex('hark_secrets').insert({ name: 'legacy_links_before', value: new Date().toISOString() });

  await knex.schema.createTable('twilio_inbound', (t) => {
    t.text('message_sid').primary();
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.index(['received_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('twilio_inbound');
  // Back to bare hashes where the address is known; the others cannot be converted.
  await knex.raw(`UPDATE suppressions s SET address_hash = sha256(convert_to(k.addr, 'UTF8'))
                    FROM (${KNOWN_ADDRESSES}) k
                   WHERE s.workspace_id = k.workspace_id AND s.channel = k.channel AND s.address_hash = hark_address_hash(k.addr)`);
  await knex.raw('DROP FUNCTION IF EXISTS hark_address_hash(text)');
  await knex.schema.alterTable('suppressions', (t) => {
    t.dropColumn('legacy');
  });
  await knex.schema.dropTableIfExists('hark_secrets');
}
