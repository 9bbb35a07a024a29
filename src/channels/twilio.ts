import twilio from 'twilio';
import { RebasedLibraryClient, TwilioHttpClient, twilioHttpClientKind } from './twilio-http';
import { ANSWER_LOST, Channel, ChannelError, OutgoingSms } from './types';

export interface TwilioChannelOptions {
  accountSid: string;
  authToken: string;
  /** TWILIO_API_URL: https://api.twilio.com in production, a local stand-in in tests. */
  apiUrl: string;
  maxSockets?: number;
  /** How long a request may wait for its answer (default 30 s); past it the SMS counts as maybe sent (ANSWER_LOST). */
  timeoutMs?: number;
  /**
   * What carries the library's HTTP requests: 'hark' (src/channels/twilio-http.ts) or 'library',
   * its own axios client. Default: hark's, unless HTTP_PROXY or TWILIO_CA_BUNDLE is set, which
   * only the library's client honours.
   */
  httpClient?: 'hark' | 'library';
}

/**
 * Twilio error codes that mean the number itself must not be messaged again:
 * 21211 invalid 'To', 21610 recipient replied STOP, 21614 not a mobile number, 21612 unreachable via this route.
 */
const SUPPRESS_CODES = new Set([21211, 21610, 21614]);

export function classifyTwilioError(err: unknown): ChannelError {
  const e = err as { status?: number; code?: number | string; message?: string };
  if (typeof e.status === 'number') {
    const code = typeof e.code === 'number' ? e.code : undefined;
    const label = `Twilio ${e.status}${code ? `/${code}` : ''}`;
    // 429 refuses the request before it is processed: retry. A 5xx comes from a request Twilio
    // received and may have acted on (queued the SMS) before failing to answer: never resend.
    if (e.status === 429) return new ChannelError(`${label}: temporary failure`, false, false, code ? String(code) : String(e.status));
    if (e.status >= 500) return new ChannelError(`${label}: answer lost after the request was received`, true, false, ANSWER_LOST);
    if (code !== undefined && SUPPRESS_CODES.has(code)) return new ChannelError(`${label}: number refused`, true, true, String(code));
    // 401/403 are our credentials: retrying after an operator fixes them beats failing the campaign.
    if (e.status === 401 || e.status === 403) return new ChannelError(`${label}: not authorised`, false, false, code ? String(code) : String(e.status));
    return new ChannelError(`${label}: request refused`, true, false, code ? String(code) : String(e.status));
  }
  // Written, then no answer: the SMS may have left, so it must not be sent again (dispatch: 'unknown').
  if (e.code === ANSWER_LOST) return new ChannelError(`Twilio: ${e.message ?? 'answer lost'}`.slice(0, 500), true, false, ANSWER_LOST);
  // No HTTP status and never written (ECONNREFUSED...): worth a retry.
  return new ChannelError(`Twilio ${typeof e.code === 'string' ? e.code : 'network error'}`, false, false, typeof e.code === 'string' ? e.code : undefined);
}

/** SMS through the official twilio library behind the Channel interface. */
export function createTwilioChannel(opts: TwilioChannelOptions): Channel<OutgoingSms> {
  const kind = opts.httpClient ?? twilioHttpClientKind(process.env);
  const httpClient = kind === 'library' ? new RebasedLibraryClient(opts.apiUrl, opts.maxSockets ?? 32, opts.timeoutMs) : new TwilioHttpClient(opts.apiUrl, opts.maxSockets ?? 32, opts.timeoutMs);
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
      httpClient.close();
    },
  };
}
