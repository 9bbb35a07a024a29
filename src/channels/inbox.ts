import { createDb, Db } from '../db';
import { insertInboxMessage } from '../inbox/repo';
import { applySmsStatus } from '../public/service';
import { smsEncoding, smsSegments } from '../templates/sms';
import { Channel, ChannelError, OutgoingEmail, OutgoingSms } from './types';

/** Where the inbox writes: the caller's pool, or (in the sender thread, which has none) its own small one. */
export type InboxSource = { db: Db } | { databaseUrl: string };

export interface InboxChannels {
  email: Channel<OutgoingEmail>;
  sms: Channel<OutgoingSms>;
}

/** When an inbox SMS's delivery receipt is tried, as a status callback would arrive: after dispatch has stored it as sent. */
const RECEIPT_DELAYS_MS = [50, 200, 500, 1000, 2000, 4000, 8000, 15000];

/** A message id of a real outbox row (test sends carry `test-…`). */
const isOutboxId = (id: string) => /^\d{1,19}$/.test(id);

/**
 * The built-in inbox (SMTP_URL=inbox:, TWILIO_API_URL=inbox:) behind the Channel interface:
 * dispatch renders, checks and records a message exactly as for a provider, and this "provider"
 * keeps what it was handed in inbox_messages. Email counts as delivered on acceptance, as with
 * SMTP; an SMS gets its delivery receipt the way Twilio's status callback brings one, through the
 * same applySmsStatus, once dispatch has stored its provider id.
 * It runs in dispatch's sender thread as well as in the API process (test sends): it needs only a
 * database URL, never the caller's objects.
 */
export function createInboxChannels(source: InboxSource): InboxChannels {
  const own = 'databaseUrl' in source;
  const db = own ? createDb(source.databaseUrl, 2) : source.db;
  const receipts = new Set<NodeJS.Timeout>();
  let closed = false;

  const store = async (m: Parameters<typeof insertInboxMessage>[1]) => {
    if (closed) throw new ChannelError('inbox is closed', false, false, 'ECLOSED');
    let id: string | null;
    try {
      id = await insertInboxMessage(db, m);
    } catch (err) {
      // Nothing was stored: the send did not happen, a retry is safe.
      throw new ChannelError(`inbox: could not store (${(err as { code?: string }).code ?? 'error'})`, false, false, 'EINBOX');
    }
    if (!id) throw new ChannelError('inbox: the message row does not exist', true, false, 'EINBOX');
    return id;
  };

  const deliverLater = (providerId: string, attempt = 0) => {
    if (closed || attempt >= RECEIPT_DELAYS_MS.length) return;
    const t = setTimeout(() => {
      receipts.delete(t);
      applySmsStatus(db, { messageSid: providerId, status: 'delivered' }, new Date()).then(
        (n) => n === 0 && deliverLater(providerId, attempt + 1),
        () => deliverLater(providerId, attempt + 1),
      );
    }, RECEIPT_DELAYS_MS[attempt]);
    t.unref();
    receipts.add(t);
  };

  const close = async () => {
    if (closed) return;
    closed = true;
    for (const t of receipts) clearTimeout(t);
    receipts.clear();
    if (own) await db.destroy();
  };

  return {
    email: {
      async send(m) {
        const domain = /@([^>\s]+)>?\s*$/.exec(m.from)?.[1] ?? 'hark.local';
        const now = new Date();
        // The header block an SMTP server would receive (the body parts aside), for the console's "headers".
        const headers: Record<string, string> = {
          'Message-ID': `<hark.${m.messageId}@${domain}>`,
          Date: now.toUTCString(),
          From: m.from,
          To: m.to,
          ...(m.replyTo ? { 'Reply-To': m.replyTo } : {}),
          Subject: m.subject,
          'MIME-Version': '1.0',
          'Content-Type': 'multipart/alternative',
          ...m.headers,
        };
        const test = !isOutboxId(m.messageId);
        const id = await store({ workspaceId: m.workspaceId, messageId: test ? undefined : m.messageId, test, channel: 'email', to: m.to, from: m.from, subject: m.subject, html: m.html, text: m.text, headers, receivedAt: now });
        return { providerId: `inbox-${id}` };
      },
      close,
    },
    sms: {
      async send(m) {
        const test = !isOutboxId(m.messageId);
        const encoding = smsEncoding(m.body);
        const id = await store({ workspaceId: m.workspaceId, messageId: test ? undefined : m.messageId, test, channel: 'sms', to: m.to, from: m.from, text: m.body, headers: {}, encoding, segments: smsSegments(m.body, encoding), receivedAt: new Date() });
        const providerId = `inbox-sms-${id}`;
        if (!test) deliverLater(providerId);
        return { providerId };
      },
      close,
    },
  };
}
