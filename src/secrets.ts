import { randomBytes } from 'node:crypto';
import type { Config } from './config';
import type { Db } from './db';

/**
 * Secrets every process of an installation must share, resolved once at boot (after the
 * migrations), before the app or the workers are built.
 *
 * HARK_SIGNING_SECRET signs the public links (unsubscribe, open, click). Production requires it
 * (config.ts). Elsewhere, when it is unset, one is generated once and kept in the database
 * (hark_secrets), so that it survives restarts and every API and worker process signs and
 * verifies with the same key. It is never derived from HARK_ADMIN_TOKEN: a key derived from the
 * operator token could be brute-forced offline from any recipient's link, and would have
 * yielded the operator token with it.
 */
export async function resolveSecrets(config: Config, db: Db): Promise<Config> {
  if (config.HARK_SIGNING_SECRET) return config;
  if (config.NODE_ENV === 'production') throw new Error('config: HARK_SIGNING_SECRET is required in production');
  // Concurrent first boots: one insert wins, everyone reads the winner.
  await db('hark_secrets').insert({ name: 'signing_secret', value: randomBytes(32).toString('base64url') }).onConflict('name').ignore();
  const row = await db('hark_secrets').where({ name: 'signing_secret' }).first('value');
  return { ...config, HARK_SIGNING_SECRET: row.value as string };
}
