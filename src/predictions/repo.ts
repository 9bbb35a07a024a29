import type { Db } from '../db';
import { bindings } from '../db';
import type { BgNbdParams } from './bgnbd';
import type { PurchaseModel } from './btyd';
import type { ChurnModel } from './churn';
import type { GammaGammaParams } from './gammagamma';
import type { Validation } from './pipeline';

export type TimeUnit = 'day' | 'week';

/** Per-customer purchase summaries as of a moment, column-wise (a million rows stay compact). */
export interface Summary {
  customerId: string[];
  x: Float64Array; // repeat purchase days
  txDays: Float64Array; // first to last purchase day
  tDays: Float64Array; // first purchase day to asOf
  repeatValue: Float64Array; // net value of the repeat purchase days (sum)
}

/**
 * One set-based pass over the workspace's purchases up to asOf: purchases are first folded into
 * purchase days (in the workspace's timezone, several orders on one day are one purchase, as in
 * the papers), then into (x, t_x, T, repeat value) per customer. Fully refunded orders are not
 * purchases; partly refunded ones count at their net value. The repeat value is the total less
 * the first day's value, read off min([day, value]) (arrays compare element by element): one
 * grouping per level and no window, so the rows come out already ordered by customer id.
 */
const SUMMARY_SQL = `
  WITH days AS (
    SELECT customer_id, (occurred_at AT TIME ZONE :tz)::date AS day, sum(total - refunded) AS value
    FROM purchases
    WHERE workspace_id = :ws AND occurred_at <= :asOf AND NOT (refunded > 0 AND refunded >= total)
    GROUP BY 1, 2
  )
  SELECT customer_id, count(*) - 1 AS x, max(day) - min(day) AS tx_days,
    extract(epoch FROM ((:asOf::timestamptz AT TIME ZONE :tz) - min(day)::timestamp)) / 86400.0 AS t_days,
    sum(value) - (min(ARRAY[day - DATE '2000-01-01', value]))[2] AS repeat_value
  FROM days
  GROUP BY customer_id
  ORDER BY customer_id`;

export async function loadSummary(db: Db, workspaceId: string, asOf: Date): Promise<Summary> {
  const ws = await db('workspaces').where({ id: workspaceId }).first('timezone');
  const res = await db.raw(SUMMARY_SQL, { ws: workspaceId, asOf, tz: ws?.timezone ?? 'UTC' }).options({ rowMode: 'array' });
  const rows = res.rows as Array<[string, string | number, number, string | number, string]>;
  const n = rows.length;
  const s: Summary = { customerId: new Array(n), x: new Float64Array(n), txDays: new Float64Array(n), tDays: new Float64Array(n), repeatValue: new Float64Array(n) };
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    s.customerId[i] = String(r[0]);
    s.x[i] = Number(r[1]);
    s.txDays[i] = Number(r[2]);
    s.tDays[i] = Number(r[3]);
    s.repeatValue[i] = Number(r[4]);
  }
  return s;
}

/** What the console shows of the scored churnRisk: counts in ten bins of 0.1. */
export type Distribution = Array<{ from: number; to: number; customers: number }>;

export interface FitRow {
  id: string;
  workspace_id: string;
  as_of: Date;
  time_unit: TimeUnit;
  model: PurchaseModel;
  churn: (ChurnModel & { distribution?: Distribution }) | null;
  validation: Validation | null;
  customers: number;
  params: BgNbdParams;
  log_likelihood: number;
  spend_customers: number;
  spend_params: GammaGammaParams;
  scored_customers: number | null;
  scored_at: Date | null;
  created_at: Date;
}

export async function insertFit(db: Db, row: Omit<FitRow, 'id' | 'scored_customers' | 'scored_at' | 'created_at'>, now: Date): Promise<FitRow> {
  const [saved] = await db('prediction_fits')
    .insert({
      ...row,
      params: JSON.stringify(row.params),
      spend_params: JSON.stringify(row.spend_params),
      churn: row.churn === null ? null : JSON.stringify(row.churn),
      validation: row.validation === null ? null : JSON.stringify(row.validation),
      created_at: now,
    })
    .returning('*');
  return saved;
}

export async function markScored(db: Db, fitId: string, scored: number, now: Date, distribution: Distribution): Promise<void> {
  await db('prediction_fits')
    .where({ id: fitId })
    .update({ scored_customers: scored, scored_at: now, churn: db.raw(`coalesce(churn, '{}'::jsonb) || jsonb_build_object('distribution', ?::jsonb)`, [JSON.stringify(distribution)]) });
}

export async function lastFit(db: Db, workspaceId: string): Promise<FitRow | undefined> {
  return db('prediction_fits').where({ workspace_id: workspaceId }).orderBy('id', 'desc').first();
}

/** The customer's id, for the per-customer explanation (null: unknown in this workspace). */
export async function customerIdOf(db: Db, workspaceId: string, externalId: string): Promise<string | null> {
  const row = await db('customers').where({ workspace_id: workspaceId, external_id: externalId }).first('id');
  return row ? String(row.id) : null;
}

export async function getFit(db: Db, workspaceId: string, id: string): Promise<FitRow | undefined> {
  return db('prediction_fits').where({ workspace_id: workspaceId, id }).first();
}

export interface ScoreBatch {
  customerId: string[];
  pAlive: number[];
  expected90d: number[];
  spend365d: (string | null)[];
  churnRisk: number[];
}

/** Writes one batch of scores in one statement (ids sorted by the caller: rows lock in one order). */
export async function writeScores(db: Db, workspaceId: string, fitId: string, b: ScoreBatch, now: Date): Promise<number> {
  const res = await db.raw(
    `UPDATE customer_stats s SET p_alive = v.pa, churn_risk = v.churn, expected_purchases_90d = v.e90,
       predicted_spend_365d = v.spend, scored_at = ?, prediction_fit_id = ?
     FROM unnest(?::bigint[], ?::float8[], ?::float8[], ?::numeric[], ?::float8[]) AS v(customer_id, pa, e90, spend, churn)
     WHERE s.customer_id = v.customer_id AND s.workspace_id = ?`,
    bindings([now, fitId, b.customerId, b.pAlive, b.expected90d, b.spend365d, b.churnRisk, workspaceId]),
  );
  return res.rowCount ?? 0;
}

/**
 * Blanks the predictions that the given fit did not write (every prediction when fitId is null):
 * a customer without a purchase up to asOf, or a workspace that cannot be fitted, has no forecast
 * rather than a stale one.
 */
export async function clearOtherScores(db: Db, workspaceId: string, fitId: string | null): Promise<number> {
  const q = db('customer_stats').where({ workspace_id: workspaceId }).whereNotNull('p_alive');
  if (fitId !== null) q.andWhere((w) => w.whereNull('prediction_fit_id').orWhereNot('prediction_fit_id', fitId));
  return q.update({ p_alive: null, churn_risk: null, expected_purchases_90d: null, predicted_spend_365d: null, scored_at: null, prediction_fit_id: null });
}

/** Workspaces with at least one purchase: the nightly fit visits only these. */
export async function workspacesWithPurchases(db: Db): Promise<string[]> {
  const rows = await db.raw('SELECT w.id FROM workspaces w WHERE EXISTS (SELECT 1 FROM purchases p WHERE p.workspace_id = w.id) ORDER BY w.id');
  return rows.rows.map((r: { id: string }) => r.id);
}
