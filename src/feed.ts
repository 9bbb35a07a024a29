import type { Knex } from 'knex';
import type { Db } from './db';

/**
 * An in-database change feed over purchases or events. A consumer reads rows past its cursor
 * and advances the cursor in the same transaction as its own writes, so a crash replays rather
 * than loses. Ids are taken at insert but become visible at commit, possibly out of order; rows
 * younger than `lagMs` are left for the next read so that a slow transaction's row is not skipped.
 */
export async function consumeFeed<T>(
  db: Db,
  consumer: string,
  table: 'purchases' | 'events' | 'message_events',
  handle: (trx: Knex.Transaction, rows: Array<Record<string, any>>) => Promise<T>,
  opts: { now: Date; limit?: number; lagMs?: number },
): Promise<{ processed: number; result?: T }> {
  const limit = opts.limit ?? 5000;
  const lagMs = opts.lagMs ?? 5000;
  return db.transaction(async (trx) => {
    await trx('feed_cursors').insert({ consumer, last_id: 0 }).onConflict('consumer').ignore();
    // The row lock makes two workers of the same consumer take turns.
    const cur = await trx('feed_cursors').where({ consumer }).forUpdate().first('last_id');
    const fetched = await trx(table).where('id', '>', cur.last_id).orderBy('id').limit(limit);
    // Stop at the first row that is too young: everything after it waits with it.
    const cutoff = opts.now.getTime() - lagMs;
    const young = fetched.findIndex((r) => new Date(r.created_at).getTime() > cutoff);
    const rows = young === -1 ? fetched : fetched.slice(0, young);
    if (!rows.length) return { processed: 0 };
    const result = await handle(trx, rows);
    await trx('feed_cursors').where({ consumer }).update({ last_id: rows[rows.length - 1].id, updated_at: opts.now });
    return { processed: rows.length, result };
  });
}
