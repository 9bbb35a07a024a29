import type { Knex } from 'knex';
import { bindings } from '../db';
import { suppressedSql } from '../suppressions/repo';
import { campaignPeriod } from '../messages/partitions';
import { ADDRESS_COLUMN, CAP_STATUSES_PLANNED, CONSENT_COLUMN, quietHoursByZone } from '../messages/rules';
import { ageBandSql } from '../results/snapshot';
import type { Settings } from '../workspaces/schema';
import type { CampaignRow } from './repo';

/** Lower bound of the first batch: below every bigserial id. */
export const BEFORE_ALL_IDS = '-9223372036854775808';

/**
 * Which customers a batch takes, after the checkpoint `after`: the next `limit` of the audience,
 * or the ids read beforehand by nextBatch.
 */
export type BatchBound = { limit: number } | { ids: string[] };

/**
 * The audience customers (alias c) of a batch. The checkpoint goes inside the audience too,
 * where Postgres uses it. Ids read beforehand are looked up by primary key, a plan that holds
 * whatever the statistics say (an id range joined with the audience turned into a nested loop of
 * range scans on a freshly loaded, not yet analysed table).
 */
function batchWhere(k: Knex.Transaction, workspaceId: string, audience: Knex.QueryBuilder, after: string, bound: BatchBound): Knex.Raw {
  return 'ids' in bound
    ? k.raw('c.workspace_id = ? AND c.id = ANY(?::bigint[])', [workspaceId, bound.ids])
    : k.raw('c.workspace_id = ? AND c.id > ? AND c.id IN (SELECT a.customer_id FROM ? a WHERE a.customer_id > ?) ORDER BY c.id LIMIT ?', [workspaceId, after, audience, after, bound.limit]);
}

/**
 * The next `limit` audience customers after the checkpoint, with the time zones they span (the
 * quiet-hour ends are computed per zone in JS before the batch is written).
 */
export async function nextBatch(trx: Knex.Transaction, workspaceId: string, audience: Knex.QueryBuilder, after: string, limit: number, defaultZone: string) {
  const { rows } = await trx.raw(
    `SELECT string_agg(b.id::text, ',' ORDER BY b.id) AS ids, array_agg(DISTINCT coalesce(b.timezone, ?)) AS zones
       FROM (SELECT c.id, c.timezone FROM customers c WHERE ?) b`,
    [defaultZone, batchWhere(trx, workspaceId, audience, after, { limit })],
  );
  const r = rows[0] as { ids: string | null; zones: string[] | null };
  return { ids: r.ids ? r.ids.split(',') : [], zones: r.zones ?? [] };
}

/**
 * bucket(campaign, customer, salt) of test/helpers/buckets.ts in SQL: the first four bytes of the same sha256 as
 * an unsigned 32-bit integer, over 2^32. Both sides compute in IEEE doubles, so a comparison with a
 * percentage decides alike in Node and in Postgres (test/fanout.test.ts checks it).
 */
function bucketSql(k: Knex.Transaction, campaignId: string, salt: 'holdout' | 'abtest' | 'variant'): Knex.Raw {
  return k.raw(`(('x' || left(encode(sha256(convert_to(?::text || ':' || c.id::text || ':${salt}', 'UTF8')), 'hex'), 8))::bit(32)::bigint::float8 / 4294967296)`, [campaignId]);
}

/** Upper ends of each variant's share of [0, 1) but the last, with the same additions as pickVariant (test/helpers/buckets.ts). */
export function variantBounds(weights: number[]): number[] {
  const total = weights.reduce((a, w) => a + w, 0);
  let acc = 0;
  return weights.slice(0, -1).map((w) => (acc += w / total));
}

/** The row's snapshot (results/snapshot.ts) with the keys fan-out writes: segmentIds, ageBand (on the UTC date of now), city, gender. */
function snapshotSql(k: Knex.Transaction, c: CampaignRow, input: BatchInput, now: Date): Knex.Raw {
  const all = JSON.stringify(c.segment_ids);
  const { segments, bound } = input;
  if (segments.length && !('ids' in bound)) throw new Error('segment membership needs the batch read beforehand');
  // Of several segments, those the customer matched (else all of them); each segment's members
  // query is restricted to the batch, so Postgres evaluates it once, for the batch.
  const segs =
    'ids' in bound && segments.length
      ? k.raw(`coalesce(to_jsonb(nullif(array_remove(ARRAY[${segments.map(() => '?').join(', ')}]::text[], NULL), '{}')), ?::jsonb)`, [
          ...segments.map((s) => k.raw('CASE WHEN c.id IN (SELECT m.customer_id FROM ? m WHERE m.customer_id = ANY(?::bigint[])) THEN ? END', [s.query, bound.ids, s.id])),
          all,
        ])
      : k.raw('?::jsonb', [all]);
  return k.raw(
    `jsonb_build_object('segmentIds', ?,
       'ageBand', ${ageBandSql('extract(year FROM age(?::date, c.birth_date))::int')},
       'city', c.city, 'gender', c.gender)`,
    [segs, now.toISOString().slice(0, 10)],
  );
}

/** A segment of a campaign of several, as its members query. */
export interface SegmentQuery {
  id: string;
  query: Knex.QueryBuilder;
}

export interface BatchInput {
  audience: Knex.QueryBuilder;
  after: string;
  bound: BatchBound;
  /** Time zones of the batch (for quiet hours; read with the bound by nextBatch). */
  zones: string[];
  /** The campaign's segments when it has several (needs the ids read beforehand). */
  segments: SegmentQuery[];
}

/**
 * Writes one batch in one INSERT ... SELECT, with nothing per customer travelling between Node
 * and Postgres: the snapshot and the hash buckets (holdout, A/B share, variant) are computed
 * here; then the sending rules (see messages/rules.ts, same order of precedence: no address,
 * unsubscribed by consent or suppression hash, frequency cap counting planned rows, quiet hours
 * as a deferral), then dedup of a shared address (against this campaign's earlier rows and, in
 * the batch, the first customer id wins), then the holdout. Quiet-hour ends come per zone from
 * JS (luxon, like the re-check before send).
 *
 * No ON CONFLICT: the checkpoint gives each customer one batch and the dedup above (when it runs)
 * gives each address one row that will be sent, so a unique key (campaign+customer,
 * campaign+channel+address) that is hit fails the batch, which rolls back with its checkpoint
 * instead of silently leaving a customer without a row. (The speculative insertion of ON CONFLICT
 * cost about 13% of the statement.)
 *
 * The dedup (a window over the batch's addresses and one index probe per row, about 5% of the
 * statement at 10,000 rows) runs only with `probe`. Without it, a shared address (in the batch or
 * taken by an earlier one) is left to the unique index (campaign, channel, address), which then
 * refuses the row (23505): the caller rolls the batch back and writes it again with `probe`
 * (fanout.ts), so the rows come out the same. A campaign with a holdout always probes: held-out
 * rows are not in that index, and a held-out duplicate is still a duplicate.
 *
 * Returns the customers written (n), the last customer id and the ids of the rows due now.
 */
export async function insertBatch(trx: Knex.Transaction, c: CampaignRow, settings: Settings, input: BatchInput, now: Date, probe = true) {
  const k = trx;
  const cap = settings.frequencyCap;
  const addrCol = ADDRESS_COLUMN[c.channel];
  // Same normalisation as suppressions/repo.ts before hashing: emails trimmed and lower-cased.
  const norm = c.channel === 'email' ? 'lower(btrim(b.addr))' : 'btrim(b.addr)';
  const quietUntil = settings.quietHours
    ? k.raw('(?::jsonb ->> coalesce(c.timezone, ?))::timestamptz', [JSON.stringify(quietHoursByZone(settings.quietHours, input.zones, now)), settings.timezone])
    : k.raw('NULL::timestamptz');
  const held = c.holdout_percent > 0 ? k.raw('? * 100 < ?::float8', [bucketSql(k, c.id, 'holdout'), c.holdout_percent]) : k.raw('false');
  const ab = c.variants.length && c.ab_test ? c.ab_test : null;
  const awaiting = ab ? k.raw('? * 100 >= ?::float8', [bucketSql(k, c.id, 'abtest'), ab.testPercent]) : k.raw('false');
  // width_bucket: the number of bounds at or below u, so u < bound i picks variant i as pickVariant does.
  const variant = c.variants.length ? k.raw('width_bucket(?, ?::float8[]) + 1', [bucketSql(k, c.id, 'variant'), variantBounds(c.variants.map((v) => v.weight))]) : k.raw('NULL::int');
  const capped = cap
    ? k.raw(
        // An array of the batch's ids, as before: probes of the customer index, whatever the
        // statistics of messages say (a semi-join could turn into a scan of all messages).
        `SELECT customer_id FROM messages
          WHERE customer_id = ANY(ARRAY(SELECT id FROM b)) AND status = ANY(?::text[]) AND coalesce(sent_at, created_at) > ?
          GROUP BY customer_id HAVING count(*) >= ?`,
        [CAP_STATUSES_PLANNED, new Date(now.getTime() - cap.perDays * 86400_000), cap.maxMessages],
      )
    : k.raw('SELECT NULL::bigint AS customer_id WHERE false');
  // Dedup of a shared address: the first customer id of the batch wins, and an address taken by
  // an earlier batch is a duplicate. Without `probe`, neither is looked for (see above).
  const dedup = probe
    ? k.raw(
        `SELECT v.*, (v.rule_skip IS NULL AND (
             row_number() OVER (PARTITION BY v.rule_skip IS NULL, v.addr ORDER BY v.id) > 1 OR taken.one IS NOT NULL
           )) AS dup
           FROM v LEFT JOIN LATERAL (
             -- LATERAL + LIMIT: one probe of the unique address index per row, never a scan of the
             -- campaign's earlier rows (which grow with every batch). The campaign id comes as an
             -- InitPlan parameter, not a constant: with it the planner would look the id up in the
             -- column statistics, and an id missing from them (a new campaign after an ANALYZE that
             -- saw only an earlier one) is estimated at one row, so that an index on campaign_id
             -- alone looks as cheap and each probe walks all the campaign's earlier rows.
             SELECT 1 AS one FROM messages m
              WHERE m.campaign_id = (SELECT ?::uuid) AND m.channel = ? AND m.address = v.addr AND m.status NOT IN ('skipped', 'held_out')
                AND m.period = ?::date
              LIMIT 1) taken ON true`,
        [c.id, c.channel, campaignPeriod(c)],
      )
    : k.raw('SELECT v.*, false AS dup FROM v');
  // The plan's cost estimate is high enough to trigger JIT, whose compile time (~100 ms) would
  // exceed the statement's own work at this batch size.
  await trx.raw('SET LOCAL jit = off');
  const { rows } = await trx.raw(
    `WITH b AS (
       SELECT c.id, NULLIF(c.${addrCol}, '') AS addr, c.${CONSENT_COLUMN[c.channel]} AS consent, ? AS quiet_until,
              ? AS snapshot, ? AS held, ? AS awaiting, ? AS vi
         FROM customers c WHERE ?
     ), capped AS (?
     ), v AS MATERIALIZED (
       -- Materialized: the verdict and the hashes are computed once per row, not at each use below.
       -- The suppression list is probed only when the workspace has one for the channel (an InitPlan).
       SELECT b.*, CASE
           WHEN b.addr IS NULL THEN 'no_address'
           WHEN b.consent = 'unsubscribed' OR (EXISTS (SELECT 1 FROM suppressions s WHERE s.workspace_id = ? AND s.channel = ?)
             AND ${suppressedSql('sp.ws', 'sp.ch', norm)}) THEN 'unsubscribed'
           WHEN b.id IN (SELECT customer_id FROM capped) THEN 'frequency_cap'
         END AS rule_skip
         FROM b, (SELECT ?::uuid AS ws, ?::text AS ch) sp
     ), d AS (
       ?
     ), f AS (
       SELECT d.*, CASE WHEN d.rule_skip IS NOT NULL OR d.dup THEN 'skipped' WHEN d.held THEN 'held_out' ELSE 'queued' END AS st,
              CASE WHEN NOT d.awaiting THEN d.vi END AS pick
         FROM d
     ), ins AS (
       INSERT INTO messages (workspace_id, campaign_id, customer_id, channel, template_id, variant, address, status, skip_reason,
                             send_after, quiet_deferred, dispatch_requested_at, snapshot, created_at, period)
       SELECT ?, ?, f.id, ?,
              coalesce(CASE WHEN f.st = 'queued' THEN (?::uuid[])[f.pick] END, ?::uuid),
              CASE WHEN f.st = 'queued' THEN (?::text[])[f.pick] END,
              CASE WHEN f.rule_skip IS NULL THEN f.addr END,
              f.st,
              coalesce(f.rule_skip, CASE WHEN f.dup THEN 'duplicate' WHEN f.held THEN 'held_out' END),
              CASE WHEN f.st <> 'queued' THEN NULL WHEN f.awaiting THEN 'infinity'::timestamptz ELSE f.quiet_until END,
              f.st = 'queued' AND f.quiet_until IS NOT NULL,
              CASE WHEN f.st = 'queued' AND NOT f.awaiting THEN ?::timestamptz END,
              f.snapshot, ?, ?::date
         FROM f ORDER BY f.id
       RETURNING id, customer_id, status, send_after
     )
     SELECT count(*)::int AS n, max(customer_id)::text AS last,
            string_agg(id::text, ',' ORDER BY id) FILTER (WHERE status = 'queued' AND send_after IS NULL) AS due
       FROM ins`,
    bindings([
      quietUntil,
      snapshotSql(k, c, input, now),
      held,
      awaiting,
      variant,
      batchWhere(k, c.workspace_id, input.audience, input.after, input.bound),
      capped,
      c.workspace_id,
      c.channel,
      c.workspace_id,
      c.channel,
      dedup,
      c.workspace_id,
      c.id,
      c.channel,
      c.variants.map((v) => v.templateId),
      c.template_id,
      c.variants.map((v) => v.key),
      now,
      now,
      campaignPeriod(c),
    ]),
  );
  const r = rows[0] as { n: number; last: string | null; due: string | null };
  return { n: r.n, last: r.last, due: r.due ? r.due.split(',') : [] };
}
