import http from 'node:http';
import https from 'node:https';
import { AddressRefused, isPublicAddress, literalHost, pinnedLookup } from './address';

export interface PostOptions {
  timeoutMs: number;
  allowPrivate: boolean;
}

/**
 * One POST of a webhook body; resolves to the HTTP status (redirects are not followed: the
 * Standard Webhooks spec says not to, and a redirect is another way to a private address).
 * The host is resolved and checked by pinnedLookup, and the socket connects to the address that
 * was checked. Only the status line is read; the response body is discarded unread.
 */
export function postWebhook(url: string, headers: Record<string, string>, body: string, o: PostOptions): Promise<number> {
  const u = new URL(url);
  const literal = literalHost(u);
  if (literal && !o.allowPrivate && !isPublicAddress(literal)) return Promise.reject(new AddressRefused('address not allowed'));
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        lookup: pinnedLookup(o.allowPrivate) as unknown as typeof import('node:dns').lookup,
        agent: false,
        signal: AbortSignal.timeout(o.timeoutMs),
      },
      (res) => {
        resolve(res.statusCode ?? 0);
        res.destroy();
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/**
 * What the deliveries list shows for a failed attempt: a few coarse words, never the address,
 * port or the system's message, so the list cannot be read as a port scanner's output.
 */
export function attemptError(err: unknown): { error: string; final: boolean } {
  const e = err as { name?: string; code?: string };
  if (err instanceof AddressRefused) return { error: 'address not allowed', final: true };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return { error: 'timeout', final: false };
  switch (e.code) {
    case 'ECONNREFUSED':
      return { error: 'network error: connection refused', final: false };
    case 'ECONNRESET':
    case 'EPIPE':
      return { error: 'network error: connection reset', final: false };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return { error: 'network error: host not found', final: false };
    default:
      return { error: /CERT|SSL|TLS/i.test(e.code ?? '') ? 'network error: TLS' : 'network error', final: false };
  }
}
