import nodemailer, { type SendMailOptions } from 'nodemailer';
import type { Config } from '../config';
import { PassThrough, Readable } from 'node:stream';
import { composeEmail } from './mime';
import { ANSWER_LOST, Channel, ChannelError, OutgoingEmail } from './types';

/** Connections in the pooled SMTP transport unless a caller says otherwise. */
export const SMTP_POOL_CONNECTIONS = 8;

export interface DkimOptions {
  domainName: string;
  keySelector: string;
  privateKey: string;
}

export interface SmtpChannelOptions {
  url: string;
  pool?: boolean;
  maxConnections?: number;
  dkim?: DkimOptions;
}

/** DKIM signing from config, when all three variables are set. */
export function dkimFromConfig(config: Pick<Config, 'DKIM_DOMAIN' | 'DKIM_SELECTOR' | 'DKIM_PRIVATE_KEY'>): DkimOptions | undefined {
  if (!config.DKIM_DOMAIN || !config.DKIM_SELECTOR || !config.DKIM_PRIVATE_KEY) return undefined;
  // Keys passed through env usually arrive with literal \n.
  return { domainName: config.DKIM_DOMAIN, keySelector: config.DKIM_SELECTOR, privateKey: config.DKIM_PRIVATE_KEY.replace(/\\n/g, '\n') };
}

/** Replies that say the mailbox itself is bad: the address goes on the suppression list. */
const MAILBOX_GONE = new Set([550, 551, 553]);
const CONNECTION_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNRESET', 'ECONNREFUSED', 'EAUTH', 'ETLS', 'EPROTOCOL']);

/**
 * `handedOver`: the server had accepted DATA and the message's bytes had started to go out. A
 * failure from then on without a reply from the server (timeout, reset, closed connection) is
 * ambiguous: the server may have queued the message before the answer to the final dot was lost,
 * so it is ANSWER_LOST ('unknown', never resent). Before that point nothing can have been
 * delivered, and the failure is retried.
 */
export function classifySmtpError(err: unknown, handedOver = false): ChannelError {
  const e = err as { responseCode?: number; code?: string; message?: string };
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  // The message can echo the recipient; keep only the reply code and nodemailer's error code.
  const what = code ? `SMTP ${code}` : `SMTP ${e.code ?? 'error'}`;
  if (handedOver && code === undefined) return new ChannelError(`${what}: answer lost after the message data was sent`, true, false, ANSWER_LOST);
  if (code !== undefined && code >= 500 && code < 600) {
    return new ChannelError(`${what}: permanent rejection`, true, MAILBOX_GONE.has(code), String(code));
  }
  if (code !== undefined && code >= 400 && code < 500) return new ChannelError(`${what}: temporary failure`, false, false, String(code));
  if (e.code && CONNECTION_CODES.has(e.code)) return new ChannelError(`${what}: connection problem`, false, false, e.code);
  // Unknown: retrying is the safe side (dispatch caps attempts).
  return new ChannelError(`${what}: unexpected failure`, false, false, e.code);
}

function transportOptions(opts: SmtpChannelOptions) {
  const u = new URL(opts.url);
  const secure = u.protocol === 'smtps:';
  return {
    host: u.hostname,
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
    pool: opts.pool ?? true,
    maxConnections: opts.maxConnections ?? SMTP_POOL_CONNECTIONS,
    // A pooled connection carries many messages; reconnect now and then to spread load.
    maxMessages: 1000,
    connectionTimeout: 15000,
    greetingTimeout: 10000,
    socketTimeout: 30000,
    dkim: opts.dkim,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** The message stream of one send, as the SMTP connection got it. */
type StreamProbe = { stream?: Readable };
type HarkMailData = { harkProbe?: StreamProbe; harkRaw?: Buffer };

/** A pooled nodemailer transport behind the Channel interface. */
export function createSmtpChannel(opts: SmtpChannelOptions): Channel<OutgoingEmail> {
  const transport = nodemailer.createTransport(transportOptions(opts));
  // Which message stream the connection reads: nodemailer's pool creates it right before the SMTP
  // conversation and reads it only once the server answered DATA with 354. Whether it was read
  // tells a failure before hand-over (safe to retry) from one after (ambiguous); nodemailer's pool
  // makes the same test (readableDidRead) before it moves a message to another connection.
  // A message composed by mime.ts is streamed as the one buffer it is: nodemailer's raw stream
  // would run it through a stream pipeline (an AbortController, a transform) to no effect. Not
  // when DKIM signs: the signature is added inside nodemailer's stream.
  transport.use('stream', (mail, done) => {
    const data = mail.data as HarkMailData;
    const message = mail.message as unknown as { createReadStream(...a: unknown[]): Readable };
    const create = data.harkRaw && !opts.dkim ? () => new PassThrough().end(data.harkRaw) as PassThrough : message.createReadStream.bind(message);
    const probe = data.harkProbe;
    message.createReadStream = (...a: unknown[]) => {
      const stream = create(...a);
      if (probe) probe.stream = stream;
      return stream;
    };
    done();
  });
  return {
    async send(m) {
      const domain = /@([^>\s]+)>?\s*$/.exec(m.from)?.[1] ?? 'hark.local';
      // Deterministic per message: a resend of the same message id is recognisable downstream.
      const messageId = `<hark.${m.messageId}@${domain}>`;
      const probe: StreamProbe = {};
      // The usual message goes out as composed by mime.ts; anything else through nodemailer's composer.
      const composed = composeEmail(m, messageId);
      try {
        const info = await transport.sendMail(
          (composed
            ? { harkProbe: probe, harkRaw: composed.raw, raw: composed.raw, envelope: composed.envelope, messageId }
            : { harkProbe: probe, from: m.from, to: m.to, replyTo: m.replyTo, subject: m.subject, html: m.html, text: m.text, headers: m.headers, messageId }) as unknown as SendMailOptions,
        );
        return { providerId: composed ? messageId : String(info.messageId ?? `hark.${m.messageId}`) };
      } catch (err) {
        throw classifySmtpError(err, probe.stream?.readableDidRead === true);
      }
    },
    async close() {
      transport.close();
    },
  };
}
