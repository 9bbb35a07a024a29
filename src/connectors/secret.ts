import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Connector secrets at rest. hark has to read a secret back to verify each delivery's HMAC, so it
 * cannot keep only a hash (as it does for API keys). Kept as is, anyone holding a database dump or
 * backup could sign orders into any workspace. So it is sealed with AES-256-GCM under a key derived
 * (HKDF-SHA256) from the server's signing secret, which lives in the environment, not the database.
 * A rotation keeps them working while the old secret is given as HARK_SIGNING_SECRET_PREVIOUS (it
 * opens, never seals); a secret changed without it makes existing connectors refuse deliveries
 * (401, logged) until they are created again. Layout: version byte, 12-byte nonce, 16-byte tag, ciphertext.
 */
const VERSION = 1;

export function connectorKey(signingSecret: string): Buffer {
  return Buffer.from(hkdfSync('sha256', signingSecret, 'hark-connectors', 'connector secret v1', 32));
}

export function sealSecret(key: Buffer, secret: string): Buffer {
  const nonce = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
  return Buffer.concat([Buffer.from([VERSION]), nonce, c.getAuthTag(), body]);
}

/** The secret, or null when it was sealed under another key (the signing secret changed). */
export function openSecret(key: Buffer, sealed: Buffer): string | null {
  if (sealed.length < 29 || sealed[0] !== VERSION) return null;
  try {
    const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(1, 13));
    d.setAuthTag(sealed.subarray(13, 29));
    return Buffer.concat([d.update(sealed.subarray(29)), d.final()]).toString('utf8');
  } catch {
    return null;
  }
}
