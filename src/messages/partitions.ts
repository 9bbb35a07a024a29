import type { Knex } from 'knex';
import type { Db } from '../db';

/**
 * Monthly partitions of message_events (migrations/0021): this creates the months ahead and drops
 * those past retention. Run hourly by the maintenance worker (one job per tick across all
 * workers), and safe to run by hand or twice at once (an advisory lock serialises it).
 *
 * - Creating: this month and the next `aheadMonths`. Rows of a month that had no partition sit in
 *   message_events_default; they are moved into the new partition in the same transaction, so the
 *   feed (which reads by (xid, id), across partitions) never misses or repeats one.
 * - Dropping: every partition whose whole month ended more than `retentionMonths` months before
 *   this month is detached, then dropped; `retentionMonths` 0 keeps everything. Default-partition
 *   rows that old are deleted. To keep a month elsewhere before it goes, detach it yourself
 *   (`ALTER TABLE message_events DETACH PARTITION message_events_y2025m01`) and dump it; a
 *   detached table is no longer touched by this.
 * Each change waits at most `lockTimeoutMs` for its lock on message_events (inserts queue behind
 * it meanwhile); a change that times out is retried at the next run.
 */
export interface PartitionOptions {
  aheadMonths: number;
  retentionMonths: number;
  lockTimeoutMs?: number;
}

export interface PartitionChanges {
  created: string[];
  dropped: string[];
}

const LOCK_KEY = 'hark:message_events:partitions';

interface Month {
  name: string;
  from: string;
  to: string;
}

/** The month `offset` months from `now`'s (UTC), as a partition name and bounds. */
export function monthOf(now: Date, offset: number): Month {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  const end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  const ym = (d: Date) => `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
  return { name: `message_events_y${start.getUTCFullYear()}m${String(start.getUTCMonth() + 1).padStart(2, '0')}`, from: `${ym(start)}-01 00:00:00+00`, to: `${ym(end)}-01 00:00:00+00` };
}

/** Monthly partitions attached to message_events now, with their upper bounds. */
export async function listPartitions(db: Db | Knex.Transaction): Promise<Array<{ name: string; to: Date }>> {
  const { rows } = await db.raw(`
    SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'message_events'::regclass ORDER BY 1`);
  return (rows as Array<{ name: string; bound: string }>)
    .map((r) => ({ name: r.name, to: /TO \('([^']+)'\)/.exec(r.bound)?.[1] }))
    .filter((r): r is { name: string; to: string } => !!r.to)
    .map((r) => ({ name: r.name, to: new Date(r.to) }));
}

export async function maintainMessageEventPartitions(db: Db, now: Date, o: PartitionOptions): Promise<PartitionChanges> {
  const changes: PartitionChanges = { created: [], dropped: [] };
  const lockTimeout = `${Math.max(1, Math.round(o.lockTimeoutMs ?? 2000))}ms`;
  const step = (fn: (trx: Knex.Transaction) => Promise<void>) =>
    db.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [LOCK_KEY]);
      await trx.raw(`SET LOCAL lock_timeout = '${lockTimeout}'`);
      await fn(trx);
    });

  for (let offset = 0; offset <= o.aheadMonths; offset++) {
    const m = monthOf(now, offset);
    // Names and bounds are made from dates above, never from input.
    await step(async (trx) => {
      if ((await trx.raw('SELECT to_regclass(?) AS t', [m.name])).rows[0].t) return;
      await trx.raw(`CREATE TABLE ${m.name} (LIKE message_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`);
      await trx.raw(
        `WITH moved AS (DELETE FROM message_events_default WHERE created_at >= ?::timestamptz AND created_at < ?::timestamptz RETURNING *)
         INSERT INTO ${m.name} SELECT * FROM moved`,
        [m.from, m.to],
      );
      await trx.raw(`ALTER TABLE message_events ATTACH PARTITION ${m.name} FOR VALUES FROM ('${m.from}') TO ('${m.to}')`);
      changes.created.push(m.name);
    });
  }

  if (o.retentionMonths > 0) {
    const cutoff = new Date(monthOf(now, -o.retentionMonths).from);
    for (const p of await listPartitions(db)) {
      if (p.to > cutoff) continue;
      await step(async (trx) => {
        await trx.raw(`ALTER TABLE message_events DETACH PARTITION ${p.name}`);
        await trx.raw(`DROP TABLE ${p.name}`);
      });
      changes.dropped.push(p.name);
    }
    await step(async (trx) => {
      await trx.raw('DELETE FROM message_events_default WHERE created_at < ?', [cutoff]);
    });
  }
  return changes;
}
