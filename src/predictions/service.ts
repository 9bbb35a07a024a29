import type { Db } from '../db';
import { AppError } from '../errors';
import { expectedPurchases, fitBgNbd, groupIndex, pAlive, toTriples, type BgNbdParams } from './bgnbd';
import { conditionalSpend, fitGammaGamma, populationSpend } from './gammagamma';
import * as repo from './repo';
import type { FitRow, Summary, TimeUnit } from './repo';

/** Below this many customers with repeat purchases the estimates swing with a handful of people. */
export const MIN_REPEAT_CUSTOMERS = 50;
/** Rows per UPDATE when writing scores: short statements, one round trip per 10k customers. */
export const SCORE_BATCH = 10_000;
/** Batches written concurrently: Postgres spreads them over cores; a few leave the pool free for requests. */
export const SCORE_WRITERS = 3;

const UNIT_DAYS: Record<TimeUnit, number> = { day: 1, week: 7 };

/** The model's inputs for each customer, in the fit's time unit. */
export function modelInputs(s: Summary, unit: TimeUnit) {
  const k = UNIT_DAYS[unit];
  const n = s.x.length;
  const tx = new Float64Array(n);
  const T = new Float64Array(n);
  // Rounded to 1e-9 so that equal day counts group into the same triple whatever the division.
  for (let i = 0; i < n; i++) {
    tx[i] = Math.round((s.txDays[i]! / k) * 1e9) / 1e9;
    T[i] = Math.round((Math.max(s.tDays[i]!, s.txDays[i]!) / k) * 1e9) / 1e9;
  }
  return { x: s.x, tx, T };
}

export interface FitResult {
  fit: FitRow;
  summary: Summary;
}

/**
 * Fits BG/NBD and Gamma-Gamma on the workspace's purchases up to asOf. With too few repeat
 * customers it blanks the workspace's predictions and answers 422: no forecast beats a wrong one.
 */
export async function fitWorkspace(db: Db, workspaceId: string, asOf: Date, unit: TimeUnit, now: Date): Promise<FitResult> {
  const summary = await repo.loadSummary(db, workspaceId, asOf);
  const { x, tx, T } = modelInputs(summary, unit);
  const sx: number[] = [];
  const sz: number[] = [];
  let repeaters = 0;
  for (let i = 0; i < x.length; i++) {
    if (x[i]! < 1) continue;
    repeaters++;
    const zbar = summary.repeatValue[i]! / x[i]!;
    if (zbar > 0) {
      sx.push(x[i]!);
      sz.push(zbar);
    }
  }
  if (repeaters < MIN_REPEAT_CUSTOMERS || sx.length < MIN_REPEAT_CUSTOMERS) {
    await repo.clearOtherScores(db, workspaceId, null);
    throw new AppError(
      'unprocessable',
      `too few customers for a stable fit: ${Math.min(repeaters, sx.length)} customers with repeat purchases (of positive value) up to ${asOf.toISOString()}, at least ${MIN_REPEAT_CUSTOMERS} needed; predictions are left empty`,
      [{ path: 'asOf', message: `needs at least ${MIN_REPEAT_CUSTOMERS} customers with repeat purchases` }],
    );
  }
  const bg = fitBgNbd(toTriples(x, tx, T));
  const gg = fitGammaGamma({ x: Float64Array.from(sx), zbar: Float64Array.from(sz) });
  const fit = await repo.insertFit(
    db,
    { workspace_id: workspaceId, as_of: asOf, time_unit: unit, customers: x.length, params: bg.params, log_likelihood: bg.logLikelihood, spend_customers: sx.length, spend_params: gg.params },
    now,
  );
  return { fit, summary };
}

/** Per-customer forecasts from a fit; identical (x, t_x, T) share one evaluation of the series. */
export function forecast(fit: Pick<FitRow, 'params' | 'spend_params' | 'time_unit'>, s: Summary) {
  const unit = fit.time_unit;
  const { x, tx, T } = modelInputs(s, unit);
  const p: BgNbdParams = fit.params;
  const h90 = 90 / UNIT_DAYS[unit];
  const h365 = 365 / UNIT_DAYS[unit];
  const meanSpend = populationSpend(fit.spend_params);
  const { group, first } = groupIndex(x, tx, T);
  const gAlive = new Float64Array(first.length);
  const g90 = new Float64Array(first.length);
  const g365 = new Float64Array(first.length);
  first.forEach((i, g) => {
    gAlive[g] = pAlive(p, x[i]!, tx[i]!, T[i]!);
    g90[g] = expectedPurchases(p, h90, x[i]!, tx[i]!, T[i]!);
    g365[g] = expectedPurchases(p, h365, x[i]!, tx[i]!, T[i]!);
  });
  const n = x.length;
  const out = { pAlive: new Float64Array(n), expected90d: new Float64Array(n), spend365d: new Array<string | null>(n) };
  for (let i = 0; i < n; i++) {
    const g = group[i]!;
    const zbar = x[i]! > 0 ? s.repeatValue[i]! / x[i]! : 0;
    const perOrder = x[i]! > 0 && zbar > 0 ? conditionalSpend(fit.spend_params, x[i]!, zbar) : meanSpend;
    const spend = g365[g]! * perOrder;
    out.pAlive[i] = gAlive[g]!;
    out.expected90d[i] = g90[g]!;
    out.spend365d[i] = Number.isFinite(spend) ? Math.min(spend, 1e11).toFixed(2) : null;
  }
  return out;
}

/**
 * Writes every customer's forecast in id-ordered batches, SCORE_WRITERS statements at a time
 * (the batches cover disjoint id ranges, so they never wait on each other's row locks), then
 * blanks the rows the fit did not reach.
 */
export async function scoreWorkspace(db: Db, fit: FitRow, summary: Summary, now: Date, batchSize = SCORE_BATCH): Promise<number> {
  const f = forecast(fit, summary);
  // Ids are bigint in SQL but far below 2^53 here, so numbers order them exactly. The summary
  // comes ordered by id; the sort is only a safeguard.
  const ids = Float64Array.from(summary.customerId, Number);
  let order = Array.from(ids.keys());
  if (!ids.every((v, i) => i === 0 || ids[i - 1]! < v)) order = order.sort((i, j) => ids[i]! - ids[j]!);
  const batches = Math.ceil(order.length / batchSize);
  let next = 0;
  let written = 0;
  let failed = false;
  const writer = async () => {
    while (next < batches && !failed) {
      const b = next++;
      const idx = order.slice(b * batchSize, (b + 1) * batchSize);
      try {
        // Awaited into its own constant: `written += await` would read `written` before the
        // wait and lose the other writers' counts.
        const rows = await repo.writeScores(
          db,
          fit.workspace_id,
          fit.id,
          { customerId: idx.map((i) => summary.customerId[i]!), pAlive: idx.map((i) => f.pAlive[i]!), expected90d: idx.map((i) => f.expected90d[i]!), spend365d: idx.map((i) => f.spend365d[i]!) },
          now,
        );
        written += rows;
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCORE_WRITERS, batches) }, writer));
  await repo.clearOtherScores(db, fit.workspace_id, fit.id);
  await repo.markScored(db, fit.id, written, now);
  return written;
}

/** For the scoring job: the fit's own asOf gives the same summaries the fit saw. */
export async function scoreWithStoredFit(db: Db, workspaceId: string, fitId: string, now: Date): Promise<number> {
  const fit = await repo.getFit(db, workspaceId, fitId);
  if (!fit) return 0;
  const latest = await repo.lastFit(db, workspaceId);
  if (latest && latest.id !== fit.id) return 0; // superseded: the newer fit scores
  return scoreWorkspace(db, fit, await repo.loadSummary(db, workspaceId, new Date(fit.as_of)), now);
}

export function fitView(f: FitRow) {
  return {
    id: String(f.id),
    model: 'bg-nbd' as const,
    asOf: new Date(f.as_of).toISOString(),
    timeUnit: f.time_unit,
    customers: f.customers,
    params: f.params,
    logLikelihood: f.log_likelihood,
    spend: { model: 'gamma-gamma' as const, customers: f.spend_customers, params: f.spend_params },
    fittedAt: new Date(f.created_at).toISOString(),
    scoring: f.scored_at ? { status: 'done' as const, customers: f.scored_customers, scoredAt: new Date(f.scored_at).toISOString() } : { status: 'queued' as const },
  };
}
