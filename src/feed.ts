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
    const { horizon, caughtUp } = await feedHorizon(trx);
    await trx('feed_cursors').insert({ consumer, last_id: 0 }).onConflict('consumer').ignore();
    // The row lock makes two workers of the same consumer take turns.
    const cur = await trx('feed_cursors').where({ consumer }).forUpdate().first('last_id', trx.raw('last_xid::text AS last_xid'));
    const rows = await trx(table)
      .whereRaw('(xid, id) > (?::xid8, ?::bigint)', [cur.last_xid, cur.last_id])
      .andWhereRaw('xid < ?::xid8', [horizon])
      .orderBy([{ column: 'xid' }, { column: 'id' }])
      .limit(limit)
      .select(`${table}.*`, trx.raw('xid::text AS feed_xid'));
    // Fewer rows than the limit: everything below the horizon is consumed once this commits, so
    // the consumer is caught up to caughtUp (never moved back: an earlier run's bound still holds).
    const drained = rows.length < limit && caughtUp !== null;
    const caughtUpAt = drained ? { caught_up_at: trx.raw('GREATEST(coalesce(caught_up_at, ?::timestamptz), ?::timestamptz)', [caughtUp, caughtUp]) } : {};
    if (!rows.length) {
      if (drained) await trx('feed_cursors').where({ consumer }).update(caughtUpAt);
      return { processed: 0 };
    }
    const result = await handle(trx, rows);
    const last = rows[rows.length - 1];
    await trx('feed_cursors').where({ consumer }).update({ last_id: last.id, last_xid: trx.raw('?::xid8', [last.feed_xid]), updated_at: opts.now, ...caughtUpAt });
    return { processed: rows.length, result };
  });
}

/** The time before which every row of `consumer`'s feed that was committed has been consumed; null before its first drained run. */
export async function feedCaughtUpAt(db: Db | Knex.Transaction, consumer: string): Promise<Date | null> {
  const row = await db('feed_cursors').where({ consumer }).first('caught_up_at');
  return (row?.caught_up_at as Date | null | undefined) ?? null;
}

/**
 * The oldest transaction still running that may write to this database's feeds: the snapshot's
 * running transactions less those that pg_stat_activity shows in another database of the cluster
 * (transaction ids are the cluster's, and a long transaction of another database must not hold
 * these feeds back); the snapshot's xmax when none is left. Taken first, before the consumer's
 * transaction writes, so its own id is not in the way; and the snapshot before the activity view,
 * so a transaction is only left out once it is known to belong elsewhere. A backend whose
 * transaction id the view does not show (permissions) counts as this database's: the safe side.
 *
 * caughtUp: a time such that every transaction that committed before it has an id below the
 * horizon. With no transaction holding the horizon back, the moment just before the snapshot (a
 * transaction committed by then is not running in it, and its id is below xmax). Otherwise the
 * start of the transaction that holds it (h): a transaction that committed before h started took
 * its id before h took its own, so below h. When the view no longer shows h (it ended meanwhile,
 * or is not visible), no time is claimed (null). Times are the database server's clock.
 */
async function feedHorizon(trx: Knex.Transaction): Promise<{ horizon: string; caughtUp: Date | null }> {
  const { rows: snap } = await trx.raw('SELECT clock_timestamp() AS at, pg_current_snapshot()::text AS s');
  const { rows } = await trx.raw(
    `WITH h AS (
       SELECT min(x) AS x FROM pg_snapshot_xip(?::pg_snapshot) AS x
        WHERE (x::text::numeric % 4294967296)::bigint NOT IN (
                SELECT backend_xid::text::bigint FROM pg_stat_activity
                 WHERE backend_xid IS NOT NULL AND datid IS DISTINCT FROM (SELECT oid FROM pg_database WHERE datname = current_database())))
     SELECT coalesce(h.x, pg_snapshot_xmax(?::pg_snapshot))::text AS horizon,
            CASE WHEN h.x IS NULL THEN ?::timestamptz
                 ELSE (SELECT least(min(a.xact_start), ?::timestamptz) FROM pg_stat_activity a
                        WHERE a.backend_xid::text::bigint = (h.x::text::numeric % 4294967296)::bigint) END AS caught_up
       FROM h`,
    [snap[0].s, snap[0].s, snap[0].at, snap[0].at],
  );
  return { horizon: rows[0].horizon as string, caughtUp: (rows[0].caught_up as Date | null) ?? null };
}
