import nodemailer from 'nodemailer';
import type { Config } from '../config';
import { Channel, ChannelError, OutgoingEmail } from './types';

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

export function classifySmtpError(err: unknown): ChannelError {
  const e = err as { responseCode?: number; code?: string; message?: string };
  const code = typeof e.responseCode === 'number' ? e.responseCode : undefined;
  // The message can echo the recipient; keep only the reply code and nodemailer's error code.
  const what = code ? `SMTP ${code}` : `SMTP ${e.code ?? 'error'}`;
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

/** A pooled nodemailer transport behind the Channel interface. */
export function createSmtpChannel(opts: SmtpChannelOptions): Channel<OutgoingEmail> {
  const transport = nodemailer.createTransport(transportOptions(opts));
  return {
    async send(m) {
      const domain = /@([^>\s]+)>?\s*$/.exec(m.from)?.[1] ?? 'hark.local';
      try {
        const info = await transport.sendMail({
          from: m.from,
          to: m.to,
          replyTo: m.replyTo,
          subject: m.subject,
          html: m.html,
          text: m.text,
          headers: m.headers,
          // Deterministic per message: a resend of the same message id is recognisable downstream.
          messageId: `<hark.${m.messageId}@${domain}>`,
        });
        return { providerId: String(info.messageId ?? `hark.${m.messageId}`) };
      } catch (err) {
        throw classifySmtpError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}
