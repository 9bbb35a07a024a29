import type { Knex } from 'knex';
import { bindings } from '../db';
import { ADDRESS_COLUMN, CAP_STATUSES_PLANNED, CONSENT_COLUMN, quietHoursByZone } from '../messages/rules';
import type { Settings } from '../workspaces/schema';
import type { CampaignRow } from './repo';

/** What JS decides per customer (hash buckets, snapshot); everything the rules need is read in SQL. */
export interface PlannedRow {
  id: string;
  timezone: string | null;
  snapshot: string;
  heldOut: boolean;
  /** Picked variant (key, template), or null without variants or when waiting for the A/B winner. */
  variant: string | null;
  templateId: string | null;
  awaitingWinner: boolean;
}

/**
 * One INSERT ... SELECT for a fan-out batch: the sending rules (see messages/rules.ts, same order
 * of precedence: no address, unsubscribed by consent or suppression hash, frequency cap counting
 * planned rows, quiet hours as a deferral), then dedup of a shared address (against this
 * campaign's earlier rows and, in the batch, the first customer id wins), then the holdout.
 * Quiet-hour ends come per zone from JS (luxon, like the re-check before send). ON CONFLICT
 * DO NOTHING covers both unique keys (campaign+customer, campaign+channel+address).
 */
export async function insertFanoutRows(
  trx: Knex.Transaction,
  c: CampaignRow,
  settings: Settings,
  rows: PlannedRow[],
  now: Date,
): Promise<Array<{ id: string; status: string; send_after: Date | null }>> {
  if (!rows.length) return [];
  const zones = [...new Set(rows.map((r) => r.timezone ?? settings.timezone))];
  const quiet = quietHoursByZone(settings.quietHours, zones, now);
  const cap = settings.frequencyCap;
  const addrCol = ADDRESS_COLUMN[c.channel as 'email' | 'sms'];
  const consentCol = CONSENT_COLUMN[c.channel as 'email' | 'sms'];
  // Same normalisation as suppressions/repo.ts before hashing: emails trimmed and lower-cased.
  const norm = c.channel === 'email' ? 'lower(btrim(cu.addr))' : 'btrim(cu.addr)';
  const capSql = cap
    ? `SELECT customer_id FROM messages
        WHERE customer_id = ANY(?::bigint[]) AND status = ANY(?::text[]) AND coalesce(sent_at, created_at) > ?
        GROUP BY customer_id HAVING count(*) >= ?`
    : 'SELECT NULL::bigint AS customer_id WHERE false';
  const capArgs = cap ? [rows.map((r) => r.id), CAP_STATUSES_PLANNED, new Date(now.getTime() - cap.perDays * 86400_000), cap.maxMessages] : [];
  // The plan's cost estimate is high enough to trigger JIT, whose compile time (~100 ms) would
  // exceed the statement's own work at this batch size.
  await trx.raw('SET LOCAL jit = off');
  const { rows: out } = await trx.raw(
    `WITH b AS (
       SELECT * FROM unnest(?::bigint[], ?::jsonb[], ?::boolean[], ?::text[], ?::uuid[], ?::boolean[])
         AS u(id, snapshot, held, variant, tpl, awaiting)
     ), cu AS (
       SELECT b.*, NULLIF(c.${addrCol}, '') AS addr, c.${consentCol} AS consent,
              (?::jsonb ->> coalesce(c.timezone, ?))::timestamptz AS quiet_until
         FROM b JOIN customers c ON c.id = b.id AND c.workspace_id = ?
        WHERE c.id = ANY(?::bigint[])
     ), capped AS (${capSql}
     ), v AS MATERIALIZED (
       -- Materialized: the verdict is computed once per row, not at each of its uses below.
       SELECT cu.*, CASE
           WHEN cu.addr IS NULL THEN 'no_address'
           WHEN cu.consent = 'unsubscribed' OR EXISTS (
             SELECT 1 FROM suppressions s
              WHERE s.workspace_id = ? AND s.channel = ? AND s.address_hash = sha256(convert_to(${norm}, 'UTF8'))) THEN 'unsubscribed'
           WHEN cu.id IN (SELECT customer_id FROM capped) THEN 'frequency_cap'
         END AS rule_skip
         FROM cu
     ), d AS (
       SELECT v.*, (v.rule_skip IS NULL AND (
           row_number() OVER (PARTITION BY v.rule_skip IS NULL, v.addr ORDER BY v.id) > 1 OR taken.one IS NOT NULL
         )) AS dup
         FROM v LEFT JOIN LATERAL (
           -- LATERAL + LIMIT: one probe of the unique address index per row, never a scan of the
           -- campaign's earlier rows (which grow with every batch).
           SELECT 1 AS one FROM messages m
            WHERE m.campaign_id = ? AND m.channel = ? AND m.address = v.addr AND m.status NOT IN ('skipped', 'held_out')
            LIMIT 1) taken ON true
     ), f AS (
       SELECT d.*, CASE WHEN d.rule_skip IS NOT NULL OR d.dup THEN 'skipped' WHEN d.held THEN 'held_out' ELSE 'queued' END AS st
         FROM d
     )
     INSERT INTO messages (workspace_id, campaign_id, customer_id, channel, template_id, variant, address, status, skip_reason,
                           send_after, quiet_deferred, dispatch_requested_at, snapshot, created_at)
     SELECT ?, ?, f.id, ?,
            CASE WHEN f.st = 'queued' AND f.tpl IS NOT NULL THEN f.tpl ELSE ?::uuid END,
            CASE WHEN f.st = 'queued' THEN f.variant END,
            CASE WHEN f.rule_skip IS NULL THEN f.addr END,
            f.st,
            coalesce(f.rule_skip, CASE WHEN f.dup THEN 'duplicate' WHEN f.held THEN 'held_out' END),
            CASE WHEN f.st <> 'queued' THEN NULL WHEN f.awaiting THEN 'infinity'::timestamptz ELSE f.quiet_until END,
            f.st = 'queued' AND f.quiet_until IS NOT NULL,
            CASE WHEN f.st = 'queued' AND NOT f.awaiting THEN ?::timestamptz END,
            f.snapshot, ?
       FROM f ORDER BY f.id
     ON CONFLICT DO NOTHING
     RETURNING id, status, send_after`,
    bindings([
      rows.map((r) => r.id),
      rows.map((r) => r.snapshot),
      rows.map((r) => r.heldOut),
      rows.map((r) => r.variant),
      rows.map((r) => r.templateId),
      rows.map((r) => r.awaitingWinner),
      JSON.stringify(quiet),
      settings.timezone,
      c.workspace_id,
      rows.map((r) => r.id),
      ...capArgs,
      c.workspace_id,
      c.channel,
      c.id,
      c.channel,
      c.workspace_id,
      c.id,
      c.channel,
      c.template_id,
      now,
      now,
    ]),
  );
  return (out as Array<{ id: string; status: string; send_after: Date | null }>).map((r) => ({ ...r, id: String(r.id) }));
}
