import http from 'node:http';
import https from 'node:https';
import twilio from 'twilio';
import type RequestClient from 'twilio/lib/base/RequestClient';
import { Channel, ChannelError, OutgoingSms } from './types';

export interface TwilioChannelOptions {
  accountSid: string;
  authToken: string;
  /** TWILIO_API_URL: https://api.twilio.com in production, a local stand-in in tests. */
  apiUrl: string;
  maxSockets?: number;
}

const TWILIO_API = 'https://api.twilio.com';

/**
 * Twilio error codes that mean the number itself must not be messaged again:
 * 21211 invalid 'To', 21610 recipient replied STOP, 21614 not a mobile number, 21612 unreachable via this route.
 */
const SUPPRESS_CODES = new Set([21211, 21610, 21614]);

/**
 * The library's own RequestClient, with the API base rewritten to apiUrl. Everything else
 * (auth, form encoding, error parsing into RestException) stays the library's; keep-alive agents
 * for both http and https so a local stand-in also gets connection reuse.
 */
class RebasedRequestClient extends twilio.RequestClient {
  constructor(private readonly base: string, maxSockets: number) {
    super({ keepAlive: true, maxSockets, maxTotalSockets: maxSockets });
    const axios = (this as unknown as { axios: { defaults: { httpAgent?: http.Agent; httpsAgent?: https.Agent } } }).axios;
    axios.defaults.httpAgent = new http.Agent({ keepAlive: true, maxSockets });
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    if (typeof opts.uri === 'string' && opts.uri.startsWith(TWILIO_API)) {
      opts = { ...opts, uri: this.base + opts.uri.slice(TWILIO_API.length) };
    }
    return super.request<TData>(opts);
  }
}

export function classifyTwilioError(err: unknown): ChannelError {
  const e = err as { status?: number; code?: number | string; message?: string };
  if (typeof e.status === 'number') {
    const code = typeof e.code === 'number' ? e.code : undefined;
    const label = `Twilio ${e.status}${code ? `/${code}` : ''}`;
    if (e.status === 429 || e.status >= 500) return new ChannelError(`${label}: temporary failure`, false, false, code ? String(code) : String(e.status));
    if (code !== undefined && SUPPRESS_CODES.has(code)) return new ChannelError(`${label}: number refused`, true, true, String(code));
    // 401/403 are our credentials: retrying after an operator fixes them beats failing the campaign.
    if (e.status === 401 || e.status === 403) return new ChannelError(`${label}: not authorised`, false, false, code ? String(code) : String(e.status));
    return new ChannelError(`${label}: request refused`, true, false, code ? String(code) : String(e.status));
  }
  // No HTTP status: network trouble (ECONNREFUSED, timeout...), worth a retry.
  return new ChannelError(`Twilio ${typeof e.code === 'string' ? e.code : 'network error'}`, false, false, typeof e.code === 'string' ? e.code : undefined);
}

/** SMS through the official twilio library behind the Channel interface. */
export function createTwilioChannel(opts: TwilioChannelOptions): Channel<OutgoingSms> {
  const base = opts.apiUrl.replace(/\/+$/, '');
  const httpClient = new RebasedRequestClient(base, opts.maxSockets ?? 32);
  const client = twilio(opts.accountSid, opts.authToken, { httpClient });
  return {
    async send(m) {
      try {
        const res = await client.messages.create({
          to: m.to,
          from: m.from,
          body: m.body,
          ...(m.statusCallback ? { statusCallback: m.statusCallback } : {}),
        });
        return { providerId: res.sid };
      } catch (err) {
        throw classifyTwilioError(err);
      }
    },
    async close() {
      const axios = (httpClient as unknown as { axios: { defaults: { httpAgent?: http.Agent; httpsAgent?: https.Agent } } }).axios;
      axios.defaults.httpAgent?.destroy();
      axios.defaults.httpsAgent?.destroy();
    },
  };
}
