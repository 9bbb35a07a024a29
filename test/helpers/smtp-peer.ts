import type { AddressInfo } from 'node:net';
import { SMTPServer, SMTPServerAddress } from 'smtp-server';
import { ParsedMail, simpleParser } from 'mailparser';

export interface ReceivedMail {
  envelopeTo: string[];
  envelopeFrom?: string;
  /** Date.now() when the message's data ended (its delivery). */
  at: number;
  raw?: Buffer;
  parsed?: ParsedMail;
}

export interface SmtpPeer {
  port: number;
  url: string;
  received: ReceivedMail[];
  /** Recipients refused at RCPT (550 or 451), in order. */
  refused: Array<{ to: string; code: number }>;
  count(): number;
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  parseAll(): Promise<ParsedMail[]>;
  close(): Promise<void>;
}

export interface SmtpPeerOptions {
  /** Recipients answered 550 (mailbox unavailable). */
  rejectRecipients?: RegExp;
  /** Recipients answered 451 (try again later). */
  tempFailRecipients?: RegExp;
  /** Keep raw messages (default true). A benchmark passes false to only count. */
  keep?: boolean;
  port?: number;
  /** Recipients whose message is read to its end, stored as received, and then the connection is cut instead of answering (the reply to the final dot is lost). */
  dropAfterData?: (to: string) => boolean;
  /** Recipients whose RCPT TO is answered by cutting the connection: the message never reached the server. */
  dropAtRcpt?: (to: string) => boolean;
  /**
   * The answer to the end of each message's data comes this many ms later (default 0), as a real
   * relay's does after it queued the message (tens of ms): a benchmark's model of a relay's latency.
   * The message counts as received (`at`) when its data ended.
   */
  answerAfterMs?: number;
}

const smtpError = (code: number, message: string) => Object.assign(new Error(message), { responseCode: code });

/**
 * A real SMTP server (smtp-server, no TLS, no auth required) for tests and benchmarks.
 * Messages are parsed lazily (parseAll) so a 100,000-message run stays cheap.
 */
export async function startSmtpPeer(opts: SmtpPeerOptions = {}): Promise<SmtpPeer> {
  const keep = opts.keep ?? true;
  const received: ReceivedMail[] = [];
  const refused: Array<{ to: string; code: number }> = [];
  const waiters = new Set<() => void>();
  const notify = () => waiters.forEach((w) => w());

  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 25 * 1024 * 1024,
    // Pooled clients keep connections open; do not wait the default 30 s for them on close.
    closeTimeout: 200,
    onRcptTo(address: SMTPServerAddress, session, cb) {
      const to = address.address.toLowerCase();
      if (opts.dropAtRcpt?.(to)) return cut(session);
      if (opts.rejectRecipients?.test(to)) {
        refused.push({ to, code: 550 });
        return cb(smtpError(550, '5.1.1 mailbox unavailable'));
      }
      if (opts.tempFailRecipients?.test(to)) {
        refused.push({ to, code: 451 });
        return cb(smtpError(451, '4.3.0 try again later'));
      }
      cb();
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => {
        if (keep) chunks.push(c);
      });
      stream.on('error', cb);
      stream.on('end', () => {
        const envelopeFrom = session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined;
        received.push({
          envelopeTo: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
          envelopeFrom,
          at: Date.now(),
          ...(keep ? { raw: Buffer.concat(chunks) } : {}),
        });
        notify();
        if (session.envelope.rcptTo.some((r) => opts.dropAfterData?.(r.address.toLowerCase()))) return cut(session);
        if (opts.answerAfterMs) setTimeout(cb, opts.answerAfterMs);
        else cb();
      });
    },
  });
  // The session's connection (smtp-server keeps them in `connections`), cut as a network failure would.
  const cut = (session: { id: string }) => {
    const conns = (server as unknown as { connections: Set<{ session?: { id: string }; _socket: { destroy(): void } }> }).connections;
    for (const c of conns) if (c.session?.id === session.id) c._socket.destroy();
  };
  server.on('error', () => {
    /* a client hanging up mid-session is not the test's failure */
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    refused,
    count: () => received.length,
    waitFor(n, timeoutMs = 10000) {
      if (received.length >= n) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SMTP peer received ${received.length} of ${n} messages within ${timeoutMs} ms`));
        }, timeoutMs);
        const check = () => {
          if (received.length < n) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
      });
    },
    async parseAll() {
      const out: ParsedMail[] = [];
      for (const r of received) {
        if (!r.parsed && r.raw) r.parsed = await simpleParser(r.raw);
        if (r.parsed) out.push(r.parsed);
      }
      return out;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
