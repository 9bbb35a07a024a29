import type { Knex } from 'knex';
import type { Db } from '../db';

/**
 * Monthly partitions of message_events (migrations/0021, by created_at) and of messages
 * (migrations/0022, by period: the month of the owning send, see periodOf below): this creates
 * the months ahead and drops those past retention. Run hourly by the maintenance worker (one job
 * per tick across all workers), and safe to run by hand or twice at once (an advisory lock
 * serialises it).
 *
 * - Creating: this month and the next `aheadMonths`. Rows of a month that had no partition sit in
 *   the table's default partition; they are moved into the new partition in the same transaction,
 *   so the feed (which reads message_events by (xid, id), across partitions) never misses or
 *   repeats one. messages' rows are moved by a DELETE on the default partition itself, which does
 *   not fire messages' statement trigger that deletes their events (migrations/0022).
 * - Dropping: every partition whose whole month ended more than `retentionMonths` months before
 *   this month is detached, then dropped; `retentionMonths` 0 keeps everything. Default-partition
 *   rows that old are deleted, except messages still queued or sending. A messages month takes
 *   its messages' events and inbox copies with it (deleted just before the detach); one that
 *   still holds a queued or sending row (an enrollment older than retention still walking) is
 *   kept until that row is out (`pending`), so that retention never loses a send. To keep a
 *   month elsewhere before it goes, detach it yourself (`ALTER TABLE message_events DETACH
 *   PARTITION message_events_y2025m01`) and dump it; a detached table is no longer touched by this.
 * Each change waits at most `lockTimeoutMs` for its lock on the table (inserts queue behind it
 * meanwhile); a change that times out is retried at the next run.
 */
export interface PartitionOptions {
  aheadMonths: number;
  retentionMonths: number;
  lockTimeoutMs?: number;
}

export interface PartitionChanges {
  created: string[];
  dropped: string[];
  /** messages months past retention kept because rows in them are still queued or sending. */
  pending?: string[];
}

export type PartitionedTable = 'message_events' | 'messages';

/** Partition column and how a month's first day is written as its bound. */
const SPEC: Record<PartitionedTable, { key: string; bound: (ymd: string) => string; with: string }> = {
  message_events: { key: 'created_at', bound: (ymd) => `${ymd} 00:00:00+00`, with: '' },
  // fillfactor 50 as the send-state updates want it (migrations/0018), per partition.
  messages: { key: 'period', bound: (ymd) => ymd, with: ' WITH (fillfactor = 50)' },
};

interface Month {
  name: string;
  from: string;
  to: string;
}

const ymOf = (d: Date) => `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;

/** The month `offset` months from `now`'s (UTC), as a partition name of `table` and bounds. */
export function monthOf(now: Date, offset: number, table: PartitionedTable = 'message_events'): Month {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
  const end = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  const spec = SPEC[table];
  return { name: `${table}_y${start.getUTCFullYear()}m${String(start.getUTCMonth() + 1).padStart(2, '0')}`, from: spec.bound(`${ymOf(start)}-01`), to: spec.bound(`${ymOf(end)}-01`) };
}

/**
 * A messages row's period: the first day (UTC) of the month of its owning send. For a campaign,
 * the month its send started (campaignPeriod); for an automation step, its enrollment's entry
 * month (computed in SQL where the step is written, src/messages/outbox.ts); otherwise the row's
 * own month (the column's default).
 */
export function periodOf(d: Date): string {
  return `${ymOf(d)}-01`;
}

/** started_at is set once, when the campaign goes to 'sending', before fan-out writes a row; created_at never changes. */
export function campaignPeriod(c: { started_at: Date | null; created_at: Date }): string {
  return periodOf(new Date(c.started_at ?? c.created_at));
}

/** Monthly partitions attached to `table` now, with their upper bounds. */
export async function listPartitions(db: Db | Knex.Transaction, table: PartitionedTable = 'message_events'): Promise<Array<{ name: string; to: Date }>> {
  const { rows } = await db.raw(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = ?::regclass ORDER BY 1`,
    [table],
  );
  return (rows as Array<{ name: string; bound: string }>)
    .map((r) => ({ name: r.name, to: /TO \('([^']+)'\)/.exec(r.bound)?.[1] }))
    .filter((r): r is { name: string; to: string } => !!r.to)
    .map((r) => ({ name: r.name, to: new Date(r.to.length === 10 ? `${r.to}T00:00:00Z` : r.to) }));
}

export function maintainMessageEventPartitions(db: Db, now: Date, o: PartitionOptions): Promise<PartitionChanges> {
  return maintainPartitions(db, 'message_events', now, o);
}

export function maintainMessagePartitions(db: Db, now: Date, o: PartitionOptions): Promise<PartitionChanges> {
  return maintainPartitions(db, 'messages', now, o);
}

async function maintainPartitions(db: Db, table: PartitionedTable, now: Date, o: PartitionOptions): Promise<PartitionChanges> {
  const changes: PartitionChanges = { created: [], dropped: [] };
  const { key, with: storage } = SPEC[table];
  const lockTimeout = `${Math.max(1, Math.round(o.lockTimeoutMs ?? 2000))}ms`;
  const step = (fn: (trx: Knex.Transaction) => Promise<void>) =>
    db.transaction(async (trx) => {
      await trx.raw('SELECT pg_advisory_xact_lock(hashtext(?))', [`hark:${table}:partitions`]);
      await trx.raw(`SET LOCAL lock_timeout = '${lockTimeout}'`);
      await fn(trx);
    });

  // Table, column names and bounds below come from SPEC and from dates, never from input.
  for (let offset = 0; offset <= o.aheadMonths; offset++) {
    const m = monthOf(now, offset, table);
    await step(async (trx) => {
      if ((await trx.raw('SELECT to_regclass(?) AS t', [m.name])).rows[0].t) return;
      await trx.raw(`CREATE TABLE ${m.name} (LIKE ${table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)${storage}`);
      await trx.raw(
        `WITH moved AS (DELETE FROM ${table}_default WHERE ${key} >= ? AND ${key} < ? RETURNING *)
         INSERT INTO ${m.name} SELECT * FROM moved`,
        [m.from, m.to],
      );
      await trx.raw(`ALTER TABLE ${table} ATTACH PARTITION ${m.name} FOR VALUES FROM ('${m.from}') TO ('${m.to}')`);
      changes.created.push(m.name);
    });
  }

  if (o.retentionMonths > 0) {
    const cutoff = new Date(`${ymOf(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - o.retentionMonths, 1)))}-01T00:00:00Z`);
    for (const p of await listPartitions(db, table)) {
      if (p.to > cutoff) continue;
      // A message not yet sent is never dropped (a send lost): its month waits until it is out.
      if (table === 'messages' && (await db.raw(`SELECT 1 FROM ${p.name} WHERE status IN ('queued', 'sending') LIMIT 1`)).rows.length) {
        (changes.pending ??= []).push(p.name);
        continue;
      }
      await step(async (trx) => {
        // The month's events and inbox copies go with it (what messages' delete trigger does).
        if (table === 'messages') await deleteDependents(trx, p.name);
        await trx.raw(`ALTER TABLE ${table} DETACH PARTITION ${p.name}`);
        await trx.raw(`DROP TABLE ${p.name}`);
      });
      changes.dropped.push(p.name);
    }
    await step(async (trx) => {
      // Through the parent (pruned to the default partition): messages' delete trigger takes their events.
      const unsent = table === 'messages' ? ` AND status NOT IN ('queued', 'sending')` : '';
      await trx.raw(`DELETE FROM ${table} WHERE ${key} < ?${unsent}`, [SPEC[table].bound(periodOf(cutoff))]);
    });
  }
  return changes;
}

async function deleteDependents(trx: Knex.Transaction, partition: string): Promise<void> {
  await trx.raw(`DELETE FROM message_events e USING ${partition} m WHERE e.message_id = m.id AND e.workspace_id = m.workspace_id`);
  await trx.raw(`DELETE FROM inbox_messages i USING ${partition} m WHERE i.message_id = m.id AND i.workspace_id = m.workspace_id`);
}
