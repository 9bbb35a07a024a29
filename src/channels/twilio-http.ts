import http from 'node:http';
import https from 'node:https';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';

import { ANSWER_LOST } from './types';

const TWILIO_API = 'https://api.twilio.com';
const DEFAULT_TIMEOUT_MS = 30_000;

/** The library's request URI with api.twilio.com replaced by TWILIO_API_URL (a local stand-in in tests). */
const rebaser = (apiUrl: string) => {
  const base = apiUrl.replace(/\/+$/, '');
  return (uri: string) => (uri.startsWith(TWILIO_API) ? base + uri.slice(TWILIO_API.length) : uri);
};

/** Errors that mean the request never left this machine. */
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_INVALID_URL']);

/**
 * The library's own client (axios) with only the API base rewritten to TWILIO_API_URL. hark uses
 * it where the library's client does what hark's does not: an HTTP_PROXY, or a TWILIO_CA_BUNDLE.
 * It cannot tell a request that was written from one that was not: only a failure to connect is retried.
 */
export class RebasedLibraryClient extends twilio.RequestClient {
  private readonly rebase: (uri: string) => string;
  private readonly httpAgent: http.Agent;

  constructor(apiUrl: string, maxSockets: number, timeoutMs = DEFAULT_TIMEOUT_MS) {
    super({ keepAlive: true, maxSockets, maxTotalSockets: maxSockets, timeout: timeoutMs });
    this.rebase = rebaser(apiUrl);
    // The library sets its keep-alive agent for https only; a local stand-in speaks http.
    this.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
    (this as unknown as { axios: { defaults: { httpAgent?: http.Agent } } }).axios.defaults.httpAgent = this.httpAgent;
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>) {
    try {
      return await super.request<TData>({ ...opts, uri: this.rebase(opts.uri) });
    } catch (err) {
      // This client cannot tell whether the request was written: only errors that mean no
      // connection was made are safe to retry; any other may have reached Twilio.
      const code = (err as { code?: string }).code;
      if (code && NEVER_CONNECTED.has(code)) throw err;
      throw new TransportError(`answer lost or request in doubt: ${(err as Error).message}`, ANSWER_LOST);
    }
  }

  close(): void {
    this.httpAgent.destroy();
    (this as unknown as { axios: { defaults: { httpsAgent?: https.Agent } } }).axios.defaults.httpsAgent?.destroy();
  }
}

/** Which client carries the library's requests: the library's own where a proxy or a CA bundle is configured for it. */
export function twilioHttpClientKind(env: NodeJS.ProcessEnv): 'hark' | 'library' {
  return env.HTTP_PROXY || env.TWILIO_CA_BUNDLE ? 'library' : 'hark';
}

/** A transport error with a code (ECONNREFUSED, EANSWERLOST...), as classifyTwilioError reads it. */
class TransportError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

/** Form or query encoding as the library's own client does it (qs, arrayFormat 'repeat'), for flat params. */
function encode(params: object): string {
  const out = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) out.append(k, item === null ? '' : typeof item === 'object' ? JSON.stringify(item) : String(item));
  }
  return out.toString();
}

/**
 * The twilio library's custom HTTP client hook (https://www.twilio.com/docs/libraries/node/custom-http-client):
 * the library still builds every request (resource path, parameters, auth, headers) and parses
 * every answer (RestException, message resource); this only carries it, over node's keep-alive
 * agents, with the API base rewritten to TWILIO_API_URL. The library's default client does the
 * same through axios, which in a profile of 20,000 sends cost about a third of the CPU per SMS.
 * Unlike it, this one tells a request that never left (ECONNREFUSED...: safe to retry) from one
 * whose answer was lost after it was written (ANSWER_LOST: the SMS may have gone, never resend).
 */
export class TwilioHttpClient extends twilio.RequestClient {
  private readonly rebase: (uri: string) => string;
  private readonly agents: { http: http.Agent; https: https.Agent };

  constructor(apiUrl: string, maxSockets: number, private readonly timeoutMs = DEFAULT_TIMEOUT_MS) {
    super({ keepAlive: true });
    this.rebase = rebaser(apiUrl);
    this.agents = { http: new http.Agent({ keepAlive: true, maxSockets }), https: new https.Agent({ keepAlive: true, maxSockets }) };
  }

  override async request<TData>(opts: RequestClient.RequestOptions<TData>): Promise<{ statusCode: number; body: any; headers: any }> {
    if (!opts.method) throw new Error('http method is required');
    if (!opts.uri) throw new Error('uri is required');
    const headers: Record<string, string> = { ...(opts.headers as Record<string, string> | undefined) };
    if (opts.username && opts.password) headers.Authorization = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    else if (opts.authStrategy) headers.Authorization = await opts.authStrategy.getAuthString();
    const url = new URL(this.rebase(opts.uri));
    if (opts.params) for (const [k, v] of new URLSearchParams(encode(opts.params))) url.searchParams.append(k, v);
    let body: string | undefined;
    if (opts.data) body = headers['Content-Type'] === 'application/json' ? JSON.stringify(opts.data) : encode(opts.data);
    if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
    const secure = url.protocol === 'https:';
    const timeout = opts.timeout ?? this.timeoutMs;

    return new Promise((resolve, reject) => {
      let written = false;
      const fail = (err: Error & { code?: string }) => {
        // A kept-alive socket the server had already closed fails at once with ECONNRESET: that
        // request never reached it (Node's documented case for a retry).
        const stale = req.reusedSocket && err.code === 'ECONNRESET' && !answered;
        reject(written && !stale ? new TransportError(`answer lost after the request was sent: ${err.message}`, ANSWER_LOST) : new TransportError(err.message, err.code ?? 'ENETWORK'));
      };
      let answered = false;
      const req = (secure ? https : http).request(url, { method: opts.method.toUpperCase(), headers, agent: secure ? this.agents.https : this.agents.http, timeout }, (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', fail);
      });
      req.on('finish', () => (written = true));
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${timeout} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', fail);
      req.end(body);
    });
  }

  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}
