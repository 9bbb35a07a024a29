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
 * aborts) instead of having its rows skipped. See feedHorizon for transactions of other databases.
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
    const horizon = await feedHorizon(trx);
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

/**
 * The oldest transaction still running that may write to this database's feeds: the snapshot's
 * running transactions less those that pg_stat_activity shows in another database of the cluster
 * (transaction ids are the cluster's, and a long transaction of another database must not hold
 * these feeds back); the snapshot's xmax when none is left. Taken first, before the consumer's
 * transaction writes, so its own id is not in the way; and the snapshot before the activity view,
 * so a transaction is only left out once it is known to belong elsewhere. A backend whose
 * transaction id the view does not show (permissions) counts as this database's: the safe side.
 */
async function feedHorizon(trx: Knex.Transaction): Promise<string> {
  const { rows: snap } = await trx.raw('SELECT pg_current_snapshot()::text AS s');
  const { rows } = await trx.raw(
    `SELECT coalesce(min(x), pg_snapshot_xmax(?::pg_snapshot))::text AS horizon
       FROM pg_snapshot_xip(?::pg_snapshot) AS x
      WHERE (x::text::numeric % 4294967296)::bigint NOT IN (
              SELECT backend_xid::text::bigint FROM pg_stat_activity
               WHERE backend_xid IS NOT NULL AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database()))`,
    [snap[0].s, snap[0].s],
  );
  return rows[0].horizon as string;
}
