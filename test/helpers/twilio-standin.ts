import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';

export interface StandinMessage {
  sid: string;
  accountSid: string;
  To: string;
  From: string;
  Body: string;
  StatusCallback?: string;
}

export interface TwilioStandin {
  url: string;
  messages: StandinMessage[];
  /** Requests answered with an error (errorFor), in order. */
  refused: Array<{ To: string; code: number }>;
  /** Requests to a holdFor recipient: received, never answered. */
  held: string[];
  count(): number;
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface TwilioStandinOptions {
  /** Per recipient (To, E.164): answer with this Twilio error instead of accepting. */
  errorFor?: Record<string, { code: number; status: number }>;
  /** Recipients whose requests are read and never answered (a provider call in flight, for ever). */
  holdFor?: string[];
  /** Recipients whose message is accepted (recorded, sid assigned) and then answered with this 5xx status: the answer is lost, the SMS went. */
  failAfterAccept?: Record<string, number>;
  /** Runs after a message is accepted and before its answer is written (a status callback that overtakes the API's answer). */
  beforeAnswer?: (m: StandinMessage) => Promise<void>;
  /** Keep message bodies (default true); a benchmark may pass false. */
  keep?: boolean;
}

const MESSAGES_PATH = /^\/2010-04-01\/Accounts\/(AC[0-9a-zA-Z]+)\/Messages\.json$/;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * A local HTTP server that answers the Messages resource the way api.twilio.com does: basic auth
 * with the account sid, form-encoded body, 201 with a message resource, or a Twilio error body.
 */
export async function startTwilioStandin(opts: TwilioStandinOptions = {}): Promise<TwilioStandin> {
  const messages: StandinMessage[] = [];
  const refused: Array<{ To: string; code: number }> = [];
  const held: string[] = [];
  const waiters = new Set<() => void>();
  let counter = 0;

  const server = createServer(async (req, res) => {
    try {
      const m = MESSAGES_PATH.exec((req.url ?? '').split('?')[0]!);
      if (req.method !== 'POST' || !m) return json(res, 404, { code: 20404, message: 'The requested resource was not found', status: 404 });
      const accountSid = m[1]!;
      const auth = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
      const user = auth ? Buffer.from(auth[1]!, 'base64').toString('utf8').split(':')[0] : undefined;
      if (user !== accountSid) return json(res, 401, { code: 20003, message: 'Authenticate', status: 401 });
      const form = new URLSearchParams(await readBody(req));
      const To = form.get('To') ?? '';
      const From = form.get('From') ?? '';
      const Body = form.get('Body') ?? '';
      if (!To) return json(res, 400, { code: 21604, message: "A 'To' phone number is required.", status: 400 });
      if (opts.holdFor?.includes(To)) return void held.push(To);
      const err = opts.errorFor?.[To];
      if (err) {
        refused.push({ To, code: err.code });
        return json(res, err.status, { code: err.code, message: `error ${err.code}`, more_info: `https://www.twilio.com/docs/errors/${err.code}`, status: err.status });
      }
      const sid = `SM${randomBytes(8).toString('hex')}${(++counter).toString(16).padStart(16, '0')}`;
      const StatusCallback = form.get('StatusCallback') ?? undefined;
      const accepted: StandinMessage = { sid, accountSid, To, From, Body: opts.keep === false ? '' : Body, ...(StatusCallback ? { StatusCallback } : {}) };
      messages.push(accepted);
      if (opts.beforeAnswer) await opts.beforeAnswer(accepted);
      const lostWith = opts.failAfterAccept?.[To];
      if (lostWith) {
        waiters.forEach((w) => w());
        return json(res, lostWith, { code: 20500, message: 'Internal Server Error', status: lostWith });
      }
      const now = new Date().toUTCString();
      json(res, 201, {
        sid,
        account_sid: accountSid,
        to: To,
        from: From,
        body: Body,
        status: 'queued',
        direction: 'outbound-api',
        num_segments: '1',
        num_media: '0',
        date_created: now,
        date_updated: now,
        date_sent: null,
        price: null,
        error_code: null,
        error_message: null,
        api_version: '2010-04-01',
        uri: `/2010-04-01/Accounts/${accountSid}/Messages/${sid}.json`,
      });
      waiters.forEach((w) => w());
    } catch {
      if (!res.headersSent) json(res, 500, { code: 20500, message: 'Internal Server Error', status: 500 });
    }
  });
  server.keepAliveTimeout = 30000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    messages,
    refused,
    held,
    count: () => messages.length,
    waitFor(n, timeoutMs = 10000) {
      if (messages.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`Twilio stand-in received ${messages.length} of ${n} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (messages.length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
