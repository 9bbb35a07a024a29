import type { Db } from '../db';
import { AppError } from '../errors';
import type { BgNbdParams } from './bgnbd';
import { btydOutputs, modelInputs, type PurchaseModel } from './btyd';
import { applyChurn, RULES, topFactors } from './churn';
import { fitAsOf } from './fit';
import { conditionalSpend, fitGammaGamma, populationSpend } from './gammagamma';
import { loadHistory, summaryAt, type CutSummary } from './history';
import { histogram } from './metrics';
import { MIN_REPEAT_CUSTOMERS } from './pipeline';
import * as repo from './repo';
import type { FitRow, TimeUnit } from './repo';

export { MIN_REPEAT_CUSTOMERS, modelInputs };
/** Rows per UPDATE when writing scores: short statements, one round trip per 10k customers. */
export const SCORE_BATCH = 10_000;
/** Batches written concurrently: Postgres spreads them over cores; a few leave the pool free for requests. */
export const SCORE_WRITERS = 3;

export interface FitResult {
  fit: FitRow;
  summary: CutSummary;
}

/**
 * Fits the purchase model (MBG/NBD by default), Gamma-Gamma and the churn model on the workspace's
 * purchases up to asOf, with the validation on its own last 90 days. A workspace that cannot be
 * fitted gets a 422 and keeps the predictions it had.
 */
export async function fitWorkspace(db: Db, workspaceId: string, asOf: Date, unit: TimeUnit, now: Date, model: PurchaseModel = 'mbg-nbd'): Promise<FitResult> {
  const { main, churn, validation } = await fitAsOf(db, workspaceId, asOf, unit, model);
  const summary = main.summary;
  const sx: number[] = [];
  const sz: number[] = [];
  for (let i = 0; i < summary.x.length; i++) {
    const zbar = summary.x[i]! >= 1 ? summary.repeatValue[i]! / summary.x[i]! : 0;
    if (zbar > 0) {
      sx.push(summary.x[i]!);
      sz.push(zbar);
    }
  }
  if (sx.length < MIN_REPEAT_CUSTOMERS)
    throw new AppError('unprocessable', `too few customers for a stable spend model: ${sx.length} customers with repeat purchases of positive value up to ${asOf.toISOString()}, at least ${MIN_REPEAT_CUSTOMERS} needed; stored predictions are unchanged`, [
      { path: 'asOf', message: `needs at least ${MIN_REPEAT_CUSTOMERS} customers with repeat purchases` },
    ]);
  const gg = fitGammaGamma({ x: Float64Array.from(sx), zbar: Float64Array.from(sz) });
  const fit = await repo.insertFit(
    db,
    { workspace_id: workspaceId, as_of: asOf, time_unit: unit, model, churn, validation, customers: summary.x.length, params: main.fit.params, log_likelihood: main.fit.logLikelihood, spend_customers: sx.length, spend_params: gg.params },
    now,
  );
  return { fit, summary };
}

/** Per-customer forecasts from a stored fit, for the customers of one cut-off (its asOf). */
export function forecast(fit: Pick<FitRow, 'params' | 'spend_params' | 'time_unit' | 'model' | 'churn'>, s: CutSummary) {
  const b = btydOutputs(fit.params, fit.model, s, fit.time_unit, [], true);
  const outputsWith = (p: BgNbdParams) => btydOutputs(p, fit.model, s, fit.time_unit);
  const churn = fit.churn ? applyChurn(fit.churn, s, b, outputsWith) : Float64Array.from(b.none90d);
  const meanSpend = populationSpend(fit.spend_params);
  const n = s.x.length;
  const spend365d = new Array<string | null>(n);
  for (let i = 0; i < n; i++) {
    const zbar = s.x[i]! > 0 ? s.repeatValue[i]! / s.x[i]! : 0;
    const perOrder = s.x[i]! > 0 && zbar > 0 ? conditionalSpend(fit.spend_params, s.x[i]!, zbar) : meanSpend;
    const spend = b.expected365d[i]! * perOrder;
    spend365d[i] = Number.isFinite(spend) ? Math.min(spend, 1e11).toFixed(2) : null;
  }
  return { pAlive: b.pAlive, expected90d: b.expected90d, spend365d, churnRisk: churn, btyd: b, outputsWith };
}

/**
 * Writes every customer's forecast in id-ordered batches, SCORE_WRITERS statements at a time
 * (the batches cover disjoint id ranges, so they never wait on each other's row locks), then
 * blanks the rows the fit did not reach.
 */
export async function scoreWorkspace(db: Db, fit: FitRow, summary: CutSummary, now: Date, batchSize = SCORE_BATCH): Promise<number> {
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
          { customerId: idx.map((i) => summary.customerId[i]!), pAlive: idx.map((i) => f.pAlive[i]!), expected90d: idx.map((i) => f.expected90d[i]!), spend365d: idx.map((i) => f.spend365d[i]!), churnRisk: idx.map((i) => f.churnRisk[i]!) },
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
  await repo.markScored(db, fit.id, written, now, histogram(f.churnRisk));
  return written;
}

/** The customers of a fit's asOf, as the fit saw them. */
export async function summaryOfFit(db: Db, workspaceId: string, asOf: Date, customerId?: string): Promise<CutSummary> {
  return summaryAt(await loadHistory(db, workspaceId, asOf, [asOf], customerId), 0);
}

/** For the scoring job: the fit's own asOf gives the same summaries the fit saw. */
export async function scoreWithStoredFit(db: Db, workspaceId: string, fitId: string, now: Date): Promise<number> {
  const fit = await repo.getFit(db, workspaceId, fitId);
  if (!fit) return 0;
  const latest = await repo.lastFit(db, workspaceId);
  if (latest && latest.id !== fit.id) return 0; // superseded: the newer fit scores
  return scoreWorkspace(db, fit, await summaryOfFit(db, workspaceId, new Date(fit.as_of)), now);
}

/** How churnRisk is made under this fit, in words, and whether likelyToChurn stands on a fallback rule. */
function churnView(f: FitRow) {
  const c = f.churn;
  if (!c) return { model: 'rule' as const, rule: 'btyd' as const, description: RULES.btyd, reason: 'fitted before churn models existed', flagged: false, trainedOn: null, weights: [], distribution: null };
  return {
    model: c.kind === 'learned' ? ('logistic-regression' as const) : ('rule' as const),
    rule: c.kind === 'learned' ? null : c.kind,
    description: c.kind === 'learned' ? 'L2-regularised logistic regression learned on what this workspace\'s customers did in the 90 days after up to four earlier cut-offs, 30 days apart' : RULES[c.kind],
    reason: c.reason,
    flagged: c.flagged,
    trainedOn: c.trainedOn,
    weights: c.logistic ? c.logistic.features.map((name, j) => ({ feature: name, weight: Math.round(c.logistic!.coef[j]! * 1e4) / 1e4 })) : [],
    distribution: c.distribution ?? null,
  };
}

export function fitView(f: FitRow) {
  const churn = churnView(f);
  return {
    id: String(f.id),
    model: f.model,
    asOf: new Date(f.as_of).toISOString(),
    timeUnit: f.time_unit,
    customers: f.customers,
    params: f.params,
    logLikelihood: f.log_likelihood,
    spend: { model: 'gamma-gamma' as const, customers: f.spend_customers, params: f.spend_params },
    churn,
    likelyToChurn: {
      definition: 'returning customers (2+ purchases) with churnRisk above 0.5',
      churnRiskFrom: churn.rule === null ? 'the learned churn model' : `fallback rule "${churn.rule}": ${churn.description}`,
      fallback: churn.rule !== null,
    },
    validation: f.validation,
    fittedAt: new Date(f.created_at).toISOString(),
    scoring: f.scored_at ? { status: 'done' as const, customers: f.scored_customers, scoredAt: new Date(f.scored_at).toISOString() } : { status: 'queued' as const },
  };
}

/** GET /v1/predictions/customers/:externalId: the customer's churnRisk under the last fit and the three features that weigh most. */
export async function explainCustomer(db: Db, workspaceId: string, externalId: string) {
  const id = await repo.customerIdOf(db, workspaceId, externalId);
  if (!id) throw new AppError('not_found', 'no such customer');
  const fit = await repo.lastFit(db, workspaceId);
  if (!fit) throw new AppError('not_found', 'no model has been fitted in this workspace yet');
  const s = await summaryOfFit(db, workspaceId, new Date(fit.as_of), id);
  const base = { externalId, fitId: String(fit.id), asOf: new Date(fit.as_of).toISOString(), churnModel: churnView(fit).model, rule: churnView(fit).rule, flagged: fit.churn?.flagged ?? false };
  if (s.x.length === 0) return { ...base, churnRisk: null, pAlive: null, expectedPurchases90d: null, factors: [] };
  const f = forecast(fit, s);
  const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
  return {
    ...base,
    churnRisk: r4(f.churnRisk[0]!),
    pAlive: r4(f.pAlive[0]!),
    expectedPurchases90d: r4(f.expected90d[0]!),
    factors: fit.churn ? topFactors(fit.churn, s, f.btyd, f.outputsWith, 0).map((x) => ({ ...x, value: r4(x.value), weight: r4(x.weight) })) : [],
  };
}

/** For the likelyToChurn preset: the rule churnRisk fell back to under the last fit, if it did. */
export async function churnRuleNote(db: Db, workspaceId: string): Promise<{ churnRiskFrom: string; fallbackRule: string; reason: string | null } | null> {
  const fit = await repo.lastFit(db, workspaceId);
  if (!fit) return null;
  const v = churnView(fit);
  return v.rule === null ? null : { churnRiskFrom: `fallback rule "${v.rule}": ${v.description}`, fallbackRule: v.rule, reason: v.reason };
}
