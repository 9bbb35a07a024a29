import type { Knex } from 'knex';

/** The built-in inbox's SQL (see migrations/0014_inbox.ts). */
type Conn = Knex | Knex.Transaction;

export interface InboxInsert {
  /** Known for test sends; for a real message it is read from the message's own row. */
  workspaceId?: string;
  messageId?: string;
  test: boolean;
  channel: 'email' | 'sms';
  to: string;
  from: string;
  subject?: string | null;
  html?: string | null;
  text: string;
  headers: Record<string, string>;
  encoding?: string | null;
  segments?: number | null;
  receivedAt: Date;
}

/** Stores one delivered message; returns its inbox id, or null when its message row does not exist. */
export async function insertInboxMessage(db: Conn, m: InboxInsert): Promise<string | null> {
  const { rows } = await db.raw(
    `INSERT INTO inbox_messages (workspace_id, message_id, test, channel, to_address, from_address, subject, html, text, headers, encoding, segments, received_at)
     SELECT coalesce(?::uuid, msg.workspace_id), msg.id, ?, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?
       FROM (SELECT NULL) one LEFT JOIN messages msg ON msg.id = ?::bigint
      WHERE coalesce(?::uuid, msg.workspace_id) IS NOT NULL
     RETURNING id`,
    [
      m.workspaceId ?? null,
      m.test,
      m.channel,
      m.to,
      m.from,
      m.subject ?? null,
      m.html ?? null,
      m.text,
      JSON.stringify(m.headers),
      m.encoding ?? null,
      m.segments ?? null,
      m.receivedAt,
      m.messageId ?? null,
      m.workspaceId ?? null,
    ],
  );
  return rows[0] ? String(rows[0].id) : null;
}

export interface InboxRow {
  id: string;
  message_id: string | null;
  test: boolean;
  channel: 'email' | 'sms';
  to_address: string;
  from_address: string;
  subject: string | null;
  html: string | null;
  text: string;
  headers: Record<string, string>;
  encoding: string | null;
  segments: number | null;
  received_at: Date;
}

/** Newest first, keyset-paginated by id (ids only grow). */
export async function listInbox(db: Conn, workspaceId: string, opts: { channel?: 'email' | 'sms'; limit: number; beforeId?: string }): Promise<InboxRow[]> {
  const q = db<InboxRow>('inbox_messages').where('workspace_id', workspaceId);
  if (opts.channel) q.andWhere('channel', opts.channel);
  if (opts.beforeId) q.andWhere('id', '<', opts.beforeId);
  return q.orderBy('id', 'desc').limit(opts.limit).select('id', 'message_id', 'test', 'channel', 'to_address', 'from_address', 'subject', 'html', 'text', 'headers', 'encoding', 'segments', 'received_at');
}
