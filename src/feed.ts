import type { Knex } from 'knex';
import type { Db } from './db';

/**
 * An in-database change feed over purchases, events or message events. A consumer reads rows
 * past its cursor and advances the cursor in the same transaction as its own writes, so a crash
 * replays rather than loses.
 * Order: (xid, id), xid being the writing transaction's id (migrations/0013_reliability.ts).
 * Only rows whose transaction is below the snapshot's xmin, the oldest transaction still running,
 * are read: every such transaction has ended, and none that is running or yet to start can write a
 * row that sorts before them. So a slow transaction holds the feed back until it commits (or
 * aborts) instead of having its rows skipped. Note: the horizon is the database cluster's, so a
 * long writing transaction anywhere on it delays every feed until it ends.
 */
export async function consumeFeed<T>(
  db: Db,
  consumer: string,
  table: 'purchases' | 'events' | 'message_events',
  handle: (trx: Knex.Transaction, rows: Array<Record<string, any>>) => Promise<T>,
  opts: { now: Date; limit?: number },
): Promise<{ processed: number; result?: T }> {
  const limit = opts.limit ?? 5000;
  return db.transaction(async (trx) => {
    // Taken first, before this transaction writes: its own id is not yet in the way.
    const { rows: h } = await trx.raw('SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon');
    const horizon = h[0].horizon as string;
    await trx('feed_cursors').insert({ consumer, last_id: 0 }).onConflict('consumer').ignore();
    // The row lock makes two workers of the same consumer take turns.
    const cur = await trx('feed_cursors').where({ consumer }).forUpdate().first('last_id', trx.raw('last_xid::text AS last_xid'));
    const rows = await trx(table)
      .whereRaw('(xid, id) > (?::xid8, ?::bigint)', [cur.last_xid, cur.last_id])
      .andWhereRaw('xid < ?::xid8', [horizon])
      .orderBy([{ column: 'xid' }, { column: 'id' }])
      .limit(limit)
      .select(`${table}.*`, trx.raw('xid::text AS feed_xid'));
    if (!rows.length) return { processed: 0 };
    const result = await handle(trx, rows);
    const last = rows[rows.length - 1];
    await trx('feed_cursors').where({ consumer }).update({ last_id: last.id, last_xid: trx.raw('?::xid8', [last.feed_xid]), updated_at: opts.now });
    return { processed: rows.length, result };
  });
}
