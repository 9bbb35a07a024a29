import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config';

/**
 * Signed tokens for the public endpoints (unsubscribe, open pixel, click redirect).
 *
 * Shape: `<k>.<messageId>.<issuedAt base36 seconds>[.<base64url url>].<sig>` where sig is the first
 * 16 bytes of HMAC-SHA256 over everything before it. Dots never occur inside a part (base64url
 * and base36 have none), so the token is path-safe and needs no escaping. A click token carries
 * its URL under the signature, so /c/ can only redirect to a URL that was in the sent message.
 * Tokens live for TOKEN_MAX_AGE (RFC 8058 and the API promise at least 60 days).
 */
export type TokenKind = 'u' | 'o' | 'c';

export interface TokenPayload {
  k: TokenKind;
  /** message id */
  m: string;
  /** bound URL, click tokens only */
  u?: string;
}

export const TOKEN_MAX_AGE_SECONDS = 400 * 86400;
const CLOCK_SKEW_SECONDS = 300;
const SIG_BYTES = 16;

const sign = (body: string, secret: string) => createHmac('sha256', secret).update(body).digest().subarray(0, SIG_BYTES);

export function signToken(payload: TokenPayload, secret: string, now: Date = new Date()): string {
  if (!/^\d+$/.test(payload.m)) throw new Error('message id must be numeric');
  const parts = [payload.k, payload.m, Math.floor(now.getTime() / 1000).toString(36)];
  if (payload.k === 'c') {
    if (!payload.u) throw new Error('a click token needs its url');
    parts.push(Buffer.from(payload.u, 'utf8').toString('base64url'));
  }
  const body = parts.join('.');
  return `${body}.${sign(body, secret).toString('base64url')}`;
}

/** The payload of a genuine, unexpired token, else null (never throws on garbage). */
export function verifyToken(token: string, secret: string, now: Date = new Date()): (TokenPayload & { issuedAt: Date }) | null {
  if (typeof token !== 'string' || token.length > 8192) return null;
  const cut = token.lastIndexOf('.');
  if (cut <= 0) return null;
  const body = token.slice(0, cut);
  const given = Buffer.from(token.slice(cut + 1), 'base64url');
  const expected = sign(body, secret);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const parts = body.split('.');
  const [k, m, t, u] = parts;
  if (k !== 'u' && k !== 'o' && k !== 'c') return null;
  if (parts.length !== (k === 'c' ? 4 : 3)) return null;
  if (!m || !/^\d{1,19}$/.test(m) || !t || !/^[0-9a-z]{1,10}$/.test(t)) return null;
  const issued = parseInt(t, 36);
  const nowS = Math.floor(now.getTime() / 1000);
  if (issued > nowS + CLOCK_SKEW_SECONDS || nowS - issued > TOKEN_MAX_AGE_SECONDS) return null;
  const out: TokenPayload & { issuedAt: Date } = { k, m, issuedAt: new Date(issued * 1000) };
  if (k === 'c') {
    const url = Buffer.from(u ?? '', 'base64url').toString('utf8');
    if (!/^https?:\/\//i.test(url)) return null;
    out.u = url;
  }
  return out;
}

/** HARK_SIGNING_SECRET, as resolved at boot (src/secrets.ts: the environment's, or the one kept in the database). */
export function signingSecret(config: Pick<Config, 'HARK_SIGNING_SECRET'>): string {
  if (!config.HARK_SIGNING_SECRET) throw new Error('HARK_SIGNING_SECRET was not resolved at boot (resolveSecrets)');
  return config.HARK_SIGNING_SECRET;
}

/**
 * The key links were signed with before hark required HARK_SIGNING_SECRET: an HMAC of the operator
 * token. Only verifies (never signs), and only tokens issued before the upgrade, for the 60 days
 * the contract promises links live (see LegacyLinks in the public routes).
 */
export const legacyDerivedSecret = (adminToken: string): string => createHmac('sha256', adminToken).update('hark public link tokens v1').digest('hex');

/** How long after the upgrade a link signed under the legacy key is still honoured. */
export const LEGACY_LINK_GRACE_SECONDS = 60 * 86400;

export interface PublicLinks {
  unsubscribeUrl: string;
  openPixelUrl: string;
  clickUrl: (url: string) => string;
}

/**
 * The per-message links renderMessage embeds; dispatch calls this once per message. Each link is
 * signed when the render first reads it: an SMS whose body has no {{ unsubscribeUrl }} costs no
 * HMAC at all, an email no second one for a pixel it does not get.
 */
export function publicLinks(
  config: Pick<Config, 'HARK_SIGNING_SECRET' | 'PUBLIC_URL'>,
  messageId: string,
  now: Date = new Date(),
): PublicLinks {
  let secret: string | undefined;
  const link = (path: string, payload: Parameters<typeof signToken>[0]) => {
    secret ??= signingSecret(config);
    return `${config.PUBLIC_URL.replace(/\/+$/, '')}/${path}/${signToken(payload, secret, now)}`;
  };
  let unsubscribeUrl: string | undefined;
  let openPixelUrl: string | undefined;
  return {
    get unsubscribeUrl() {
      return (unsubscribeUrl ??= link('u', { k: 'u', m: messageId }));
    },
    get openPixelUrl() {
      return (openPixelUrl ??= link('o', { k: 'o', m: messageId }));
    },
    clickUrl: (url: string) => link('c', { k: 'c', m: messageId, u: url }),
  };
}

/**
 * The statusCallback dispatch gives Twilio for one SMS. The workspace and message id ride in the
 * query string (covered by X-Twilio-Signature), so a callback that overtakes dispatch's own
 * "sent" update still finds its message.
 */
export function twilioStatusCallbackUrl(config: Pick<Config, 'PUBLIC_URL'>, workspaceId: string, messageId: string): string {
  return `${config.PUBLIC_URL.replace(/\/+$/, '')}/webhooks/twilio/status?ws=${encodeURIComponent(workspaceId)}&m=${encodeURIComponent(messageId)}`;
}
