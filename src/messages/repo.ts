import type { Knex } from 'knex';
import { statsColumns } from '../customers/stats';
import { bindings } from '../db';
import { suppressedSql } from '../suppressions/repo';

/** The dispatch side of the outbox: claiming, outcomes, and the sweeper's recovery queries. */
type Conn = Knex | Knex.Transaction;

export interface ClaimedMessage {
  id: string;
  workspace_id: string;
  campaign_id: string | null;
  automation_id: string | null;
  customer_id: string | null;
  channel: 'email' | 'sms';
  template_id: string | null;
  address: string | null;
  attempts: number;
  /** The row's partition key (migrations/0022), passed back with its outcome so that the write prunes. */
  period: string;
}

/** A claimed message with what sending it needs: its customer (with stats) and the suppression fact. */
export interface ClaimedForSend extends ClaimedMessage {
  /** The customer row joined with its stats columns; null when the customer is gone. */
  customer: Record<string, any> | null;
  /** The address the message would go to is on the workspace's suppression list. */
  suppressed: boolean;
}

const MESSAGE_FIELDS = ['id', 'workspace_id', 'campaign_id', 'automation_id', 'customer_id', 'channel', 'template_id', 'address', 'attempts'] as const;

/**
 * messages is partitioned by period (migrations/0022): a statement by id alone probes every
 * partition's primary key. With the periods of its rows (from the dispatch job, or from the claim
 * for outcomes) the condition below prunes it to those partitions at plan time. Without them (a
 * row whose period is not known, a job enqueued before 0022) the statement runs unpruned, same result.
 */
function inPeriods(alias: string, periods: ReadonlyArray<string | undefined> | undefined): { sql: string; values: unknown[] } {
  if (!periods?.length || periods.some((p) => !p)) return { sql: '', values: [] };
  return { sql: ` AND ${alias}.period = ANY(?::date[])`, values: [[...new Set(periods)]] };
}

/**
 * queued -> sending, row by row atomically: a row another worker claimed first, a cancelled or
 * not-yet-due row is simply not returned. The claim is what makes a send happen at most once.
 * The same statement reads what the send needs (customer, stats, whether the address is
 * suppressed: same normalisation as fanout-sql.ts), so a chunk costs one round trip.
 * The ids come in as a joined unnest, not `id = ANY(...)`: that form was planned as a bitmap AND
 * with the partial index of queued rows, which reads every queued row's entry (a whole campaign's,
 * 6 of the 7 ms of a 32-row claim in the email bench); the join probes the primary key per id.
 */
export async function claimForSend(db: Conn, ids: string[], workerId: string, now: Date, periods?: string[]): Promise<ClaimedForSend[]> {
  if (!ids.length) return [];
  const part = inPeriods('messages', periods);
  // `(status = 'queued') IS TRUE`, not `status = 'queued'`: the latter lets the planner read the
  // partial index of queued rows (messages_queued_requested, id its second column) whole for each
  // id. On a month's partition not analyzed yet (autovacuum had not come by) it chose that, 30 ms a
  // claim of 32 at 100k queued against 1.5 ms by the primary key (dispatch bench, 2026-12-08).
  const { rows } = await db.raw(
    `WITH m AS (
       UPDATE messages SET status = 'sending', claimed_at = ?, claimed_by = ?, attempts = attempts + 1
         FROM unnest(?::bigint[]) AS t(id)
        WHERE messages.id = t.id AND (status = 'queued') IS TRUE AND (send_after IS NULL OR send_after <= ?)${part.sql}
        RETURNING ${MESSAGE_FIELDS.map((f) => `messages.${f}`).join(', ')}, messages.period::text AS period)
     SELECT ${MESSAGE_FIELDS.map((f) => `m.${f} AS m_${f}`).join(', ')}, m.period AS m_period,
            ${suppressedSql('m.workspace_id', 'm.channel', `(CASE WHEN m.channel = 'email' THEN lower(btrim(coalesce(m.address, c.email))) ELSE btrim(coalesce(m.address, c.phone)) END)`)} AS m_suppressed,
            c.*, ${statsColumns}
       FROM m LEFT JOIN customers c ON c.id = m.customer_id AND c.workspace_id = m.workspace_id
       LEFT JOIN customer_stats s ON s.customer_id = c.id AND s.workspace_id = c.workspace_id
      ORDER BY m.id`,
    bindings([now, workerId, ids, now, ...part.values]),
  );
  return (rows as Array<Record<string, any>>).map((r) => {
    const out: Record<string, any> = {};
    const customer: Record<string, any> = {};
    for (const [k, v] of Object.entries(r)) {
      if (k.startsWith('m_')) out[k.slice(2)] = v;
      else customer[k] = v;
    }
    return {
      ...(out as ClaimedMessage),
      id: String(out.id),
      customer_id: out.customer_id === null ? null : String(out.customer_id),
      suppressed: Boolean(out.suppressed),
      customer: customer.id === null || customer.id === undefined ? null : customer,
    };
  });
}

export async function markSkipped(db: Conn, items: Array<{ id: string; reason: string; period?: string }>): Promise<void> {
  if (!items.length) return;
  const part = inPeriods('m', items.map((i) => i.period));
  await db.raw(
    `UPDATE messages m SET status = 'skipped', skip_reason = v.reason, claimed_by = NULL
       FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::text[]) AS reason) v
      WHERE m.id = v.id AND m.status = 'sending'${part.sql}`,
    bindings([items.map((i) => i.id), items.map((i) => i.reason), ...part.values]),
  );
}

/** Back to queued, due later (quiet hours or retry backoff); the sweeper requests it when due. */
export async function requeue(db: Conn, items: Array<{ id: string; until: Date; quiet: boolean; error?: string; period?: string }>): Promise<void> {
  if (!items.length) return;
  const part = inPeriods('m', items.map((i) => i.period));
  await db.raw(
    `UPDATE messages m SET status = 'queued', send_after = v.until, quiet_deferred = m.quiet_deferred OR v.quiet,
            error = coalesce(v.error, m.error), dispatch_requested_at = NULL, claimed_by = NULL
       FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::timestamptz[]) AS until, unnest(?::boolean[]) AS quiet, unnest(?::text[]) AS error) v
      WHERE m.id = v.id AND m.status = 'sending'${part.sql}`,
    bindings([items.map((i) => i.id), items.map((i) => i.until.toISOString()), items.map((i) => i.quiet), items.map((i) => i.error ?? null), ...part.values]),
  );
}

/** Queued rows a stopping job will not claim: their dispatch counts as not requested, so the sweeper requests them again. */
export async function releaseUnclaimed(db: Conn, ids: string[], periods?: string[]): Promise<void> {
  if (!ids.length) return;
  const part = inPeriods('messages', periods);
  await db.raw(`UPDATE messages SET dispatch_requested_at = NULL WHERE id = ANY(?::bigint[]) AND status = 'queued'${part.sql}`, bindings([ids, ...part.values]));
}

/**
 * Email counts as delivered once the SMTP server accepted it (API.md); SMS waits for the callback.
 * One statement per chunk: the state change and its message events (as recordMessageEvents
 * writes them: 'sent', and 'delivered' for email) commit together without a transaction.
 */
export async function markSent(db: Conn, items: Array<{ id: string; channel: string; providerId: string; period?: string }>, now: Date): Promise<string[]> {
  if (!items.length) return [];
  const part = inPeriods('m', items.map((i) => i.period));
  const { rows } = await db.raw(
    `WITH v AS (SELECT * FROM unnest(?::bigint[], ?::text[]) AS v(id, pid)),
     upd AS (
       UPDATE messages m SET status = CASE WHEN m.channel = 'email' THEN 'delivered' ELSE 'sent' END,
              provider_id = v.pid, sent_at = ?, delivered_at = CASE WHEN m.channel = 'email' THEN ?::timestamptz END,
              error = NULL, claimed_by = NULL
         FROM v
        WHERE m.id = v.id AND m.status = 'sending'${part.sql}
        RETURNING m.id, m.workspace_id, m.channel),
     ev AS (
       INSERT INTO message_events (workspace_id, message_id, type, occurred_at, data, created_at)
       SELECT upd.workspace_id, upd.id, t.type, ?, '{}'::jsonb, ?
         FROM upd CROSS JOIN (VALUES (1, 'sent'), (2, 'delivered')) AS t(ord, type)
        WHERE t.type = 'sent' OR upd.channel = 'email'
        ORDER BY upd.id, t.ord)
     SELECT id FROM upd`,
    bindings([items.map((i) => i.id), items.map((i) => i.providerId), now, now, ...part.values, now, now]),
  );
  return (rows as Array<{ id: string }>).map((r) => String(r.id));
}

export async function markFailed(db: Conn, items: Array<{ id: string; error: string; period?: string }>, now: Date): Promise<string[]> {
  if (!items.length) return [];
  const part = inPeriods('m', items.map((i) => i.period));
  const { rows } = await db.raw(
    `UPDATE messages m SET status = 'failed', failed_at = ?, error = v.error, claimed_by = NULL
       FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::text[]) AS error) v
      WHERE m.id = v.id AND m.status = 'sending'${part.sql}
      RETURNING m.id`,
    bindings([now, items.map((i) => i.id), items.map((i) => i.error), ...part.values]),
  );
  return (rows as Array<{ id: string }>).map((r) => String(r.id));
}

/** sending -> unknown: the provider call's answer was lost, so the message may have left; never resent. */
export async function markUnknown(db: Conn, items: Array<{ id: string; error: string; period?: string }>): Promise<void> {
  if (!items.length) return;
  const part = inPeriods('m', items.map((i) => i.period));
  await db.raw(
    `UPDATE messages m SET status = 'unknown', error = v.error, claimed_by = NULL
       FROM (SELECT unnest(?::bigint[]) AS id, unnest(?::text[]) AS error) v
      WHERE m.id = v.id AND m.status = 'sending'${part.sql}`,
    bindings([items.map((i) => i.id), items.map((i) => i.error), ...part.values]),
  );
}

// ---- sweeper ----

/**
 * Heartbeats are stamped and judged by the database's clock (now()), never a worker's: a worker
 * whose clock is skewed or was paused must not be declared dead while it still sends, nor a dead
 * one kept alive by a sweeper whose clock runs late.
 */
export async function heartbeat(db: Conn, workerId: string): Promise<void> {
  await db.raw(
    `INSERT INTO dispatch_workers (id, started_at, heartbeat_at) VALUES (?, now(), now())
     ON CONFLICT (id) DO UPDATE SET heartbeat_at = EXCLUDED.heartbeat_at`,
    [workerId],
  );
}

export async function removeWorker(db: Conn, workerId: string): Promise<void> {
  await db('dispatch_workers').where({ id: workerId }).del();
}

/**
 * A row left in 'sending' by a worker that is gone (no heartbeat within deadAfterMs) may or may
 * not have reached the provider: it becomes 'unknown' and is never resent.
 */
export async function markOrphansUnknown(db: Conn, deadAfterMs: number): Promise<number> {
  const { rowCount } = await db.raw(
    `UPDATE messages SET status = 'unknown', error = 'worker stopped during the provider call', claimed_by = NULL
      WHERE status = 'sending'
        AND (claimed_by IS NULL OR claimed_by NOT IN (SELECT id FROM dispatch_workers WHERE heartbeat_at > now() - make_interval(secs => ?)))`,
    [deadAfterMs / 1000],
  );
  await db.raw(`DELETE FROM dispatch_workers WHERE heartbeat_at < now() - interval '1 hour'`);
  return rowCount ?? 0;
}

/**
 * Due queued rows whose dispatch was never requested, or was requested before `staleBefore`
 * (its job was lost with Redis, or is long overdue): marks them requested and returns them.
 * SKIP LOCKED lets several sweepers run at once without taking the same rows.
 */
export async function takeUndispatched(db: Conn, now: Date, staleBefore: Date, wallNow: Date, limit: number): Promise<Array<{ id: string; period: string }>> {
  const { rows } = await db.raw(
    `WITH due AS (
       SELECT id, period FROM messages
        WHERE status = 'queued' AND (dispatch_requested_at IS NULL OR dispatch_requested_at < ?)
          AND (send_after IS NULL OR send_after <= ?)
        ORDER BY dispatch_requested_at NULLS FIRST, id LIMIT ? FOR UPDATE SKIP LOCKED)
     UPDATE messages m SET dispatch_requested_at = ? FROM due WHERE m.id = due.id AND m.period = due.period RETURNING m.id, m.period::text AS period`,
    [staleBefore, now, limit, wallNow],
  );
  return (rows as Array<{ id: string; period: string }>).map((r) => ({ id: String(r.id), period: r.period })).sort((a, b) => Number(a.id) - Number(b.id));
}
