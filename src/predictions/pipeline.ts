import type { BgNbdFit } from './bgnbd';
import { btydOutputs, fitPurchaseModel, repeatBuyers, UNIT_DAYS, type BtydOutputs, type PurchaseModel } from './btyd';
import { applyChurn, CHURN_DAYS, MAX_TRAINING_ROWS, MIN_HISTORY_DAYS, MIN_TRAINING_CUSTOMERS, RULES, ruleModel, sampleRows, train, type ChurnModel, type TrainingWindow } from './churn';
import { purchasesBetween, subsetSummary, summaryAt, type CutSummary, type History } from './history';
import { ascending, auc, brier, calibrationDeciles, mean, precisionAtTop } from './metrics';
import type { TimeUnit } from './repo';

/** Below this many customers with repeat purchases the estimates swing with a handful of people. */
export const MIN_REPEAT_CUSTOMERS = 50;
/** "The customers we rated most likely to lapse": this share of them, for the console's sentence. */
export const TOP_SHARE = 0.2;
export const DAY_MS = 86_400_000;

/** The purchase model fitted at one cut-off of a History, with its per-customer outputs there. */
export interface CutFit {
  k: number;
  summary: CutSummary;
  fit: BgNbdFit;
  btyd: BtydOutputs & { horizons: Float64Array[] };
  repeaters: number;
}

export type CutFailure = { reason: 'too_few_repeaters' | 'not_converged'; repeaters: number; customers: number };

export function fitCut(h: History, k: number, unit: TimeUnit, model: PurchaseModel, horizonDays: number[] = [], warm?: BgNbdFit['params']): CutFit | CutFailure {
  const summary = summaryAt(h, k);
  const repeaters = repeatBuyers(summary);
  if (repeaters < MIN_REPEAT_CUSTOMERS) return { reason: 'too_few_repeaters', repeaters, customers: summary.x.length };
  const fit = fitPurchaseModel(summary, unit, model, warm);
  if (!fit.converged) return { reason: 'not_converged', repeaters, customers: summary.x.length };
  return { k, summary, fit, repeaters, btyd: btydOutputs(fit.params, model, summary, unit, horizonDays) };
}

export const isFailure = (c: CutFit | CutFailure | null): c is CutFailure | null => c === null || 'reason' in c;

/** Churned (1) or not (0) over cut-offs from..to, for the customers of `s`. */
export function churnLabels(h: History, s: CutSummary, from: number, to: number): Uint8Array {
  return Uint8Array.from(purchasesBetween(h, s, from, to), (v) => (v === 0 ? 1 : 0));
}

/**
 * Training windows: the most recent labels the 90 days up to the cut-off the model is applied at;
 * TRAINING_WINDOWS in all, WINDOW_STEP_DAYS apart, each older one kept when it had
 * MIN_HISTORY_DAYS of purchases and MIN_TRAINING_CUSTOMERS customers before its cut-off.
 */
export const TRAINING_WINDOWS = 4;
export const WINDOW_STEP_DAYS = 30;
/** Cut-offs a fit needs, as steps of WINDOW_STEP_DAYS back from asOf: its windows' and its validation's (one churn window further back). */
export const GRID_STEPS = 2 * (CHURN_DAYS / WINDOW_STEP_DAYS) + TRAINING_WINDOWS - 1;

/** An older window: its cut-off and the cut-off 90 days later, as indices in the History. */
export type WindowCuts = { k: number; kEnd: number };

function trainingWindows(h: History, apply: CutFit, trained: CutFit, older: WindowCuts[], earliestDay: number, unit: TimeUnit, model: PurchaseModel): TrainingWindow[] {
  const eligible = older.filter((w) => h.cuts[w.k]!.day - earliestDay >= MIN_HISTORY_DAYS && h.cuts[w.k]!.n.reduce((c, v) => c + (v > 0 ? 1 : 0), 0) >= MIN_TRAINING_CUSTOMERS);
  const share = Math.floor(MAX_TRAINING_ROWS / (1 + eligible.length));
  // Each window's rows are sampled before its BTYD features are worked out: at a million
  // customers the features of every window in full would cost more than the fit.
  const first = (() => {
    const pick = sampleRows(trained.summary.x.length, share);
    const s = pick ? subsetSummary(trained.summary, pick) : trained.summary;
    const b = pick ? btydOutputs(trained.fit.params, model, s, unit) : trained.btyd;
    return { cutoff: h.cuts[trained.k]!.at, s, b, churned: churnLabels(h, s, trained.k, apply.k) };
  })();
  const rest = eligible.map((w) => {
    const all = summaryAt(h, w.k);
    const pick = sampleRows(all.x.length, share);
    const s = pick ? subsetSummary(all, pick) : all;
    // Under the parameters of the most recent window's fit, as at application (see ChurnModel.btydParams).
    return { cutoff: h.cuts[w.k]!.at, s, b: btydOutputs(trained.fit.params, model, s, unit), churned: churnLabels(h, s, w.k, w.kEnd) };
  });
  return [first, ...rest];
}

/**
 * The churn model to apply at `apply`'s cut-off, learned at `trained` (90 days earlier) on what its
 * customers did in the 90 days in between, and on the `older` windows stacked with it; the stated
 * rule when the history is too thin for that.
 */
export function learnChurn(h: History, apply: CutFit, trained: CutFit | CutFailure | null, earliestDay: number, older: WindowCuts[], unit: TimeUnit, model: PurchaseModel): ChurnModel {
  const span = h.cuts[apply.k]!.day - earliestDay;
  if (span < MIN_HISTORY_DAYS) return ruleModel(`too little history to learn from: ${Math.floor(span)} days of purchases, at least ${MIN_HISTORY_DAYS} needed; churnRisk is ${RULES.btyd}`);
  if (isFailure(trained)) {
    const customers = trained?.customers ?? 0;
    if (customers < MIN_TRAINING_CUSTOMERS) return ruleModel(`too little history to learn from: ${customers} customers had bought before the training cut-off, at least ${MIN_TRAINING_CUSTOMERS} needed; churnRisk is ${RULES.btyd}`);
    return ruleModel(`the purchase model could not be fitted at the training cut-off (${trained!.reason.replace(/_/g, ' ')}); churnRisk is ${RULES.btyd}`);
  }
  if (trained.summary.x.length < MIN_TRAINING_CUSTOMERS)
    return ruleModel(`too little history to learn from: ${trained.summary.x.length} customers had bought before the training cut-off, at least ${MIN_TRAINING_CUSTOMERS} needed; churnRisk is ${RULES.btyd}`);
  return train('learned', trainingWindows(h, apply, trained, older, earliestDay, unit, model), trained.fit.params);
}

/**
 * The recency rule, as RULES says: calibrated on the last 90 days alone. Stacked with older windows
 * it could turn over: where the model it replaces lost to recency, the windows may disagree on what
 * recency means (test/helpers/predictions-data.ts builds such a history).
 */
export function recencyFallback(h: History, apply: CutFit, trained: CutFit, earliestDay: number, unit: TimeUnit, model: PurchaseModel, why: string): ChurnModel {
  const m = train('recency', trainingWindows(h, apply, trained, [], earliestDay, unit, model), trained.fit.params);
  return { ...m, flagged: true, reason: `${why}; churnRisk is ${RULES.recency}` };
}

export interface Validation {
  model: PurchaseModel;
  calibrationEnd: string;
  holdoutEnd: string;
  customers: number;
  holdoutDays: number;
  predictedPurchases: number;
  actualPurchases: number;
  meanAbsoluteError: number;
  churnDays: number;
  churnAuc: number;
  recencyAuc: number;
  brier: number;
  baseRateBrier: number;
  churnRate: number;
  meanChurnRisk: number;
  churnModel: ChurnModel['kind'];
  churnModelReason: string | null;
  topShare: number;
  topChurned: number; // share who did not buy among the TOP_SHARE rated most likely to lapse
  topChurnedByRecency: number; // the same for the TOP_SHARE longest since their last purchase
  calibration: ReturnType<typeof calibrationDeciles>;
}

/**
 * Compares what the models said at cut-off cal.k with what happened next: purchases up to cut-off
 * kHold (cal.horizons[0] holds each customer's predicted purchases for it), churn up to kChurn.
 */
export function evaluate(h: History, cal: CutFit, churn: ChurnModel, kChurn: number, kHold: number, model: PurchaseModel, unit: TimeUnit): Validation {
  const s = cal.summary;
  const actual = purchasesBetween(h, s, cal.k, kHold);
  const predicted = cal.btyd.horizons[0]!;
  let sumP = 0;
  let sumA = 0;
  let mae = 0;
  for (let i = 0; i < actual.length; i++) {
    sumP += predicted[i]!;
    sumA += actual[i]!;
    mae += Math.abs(predicted[i]! - actual[i]!);
  }
  const churned = churnLabels(h, s, cal.k, kChurn);
  const risk = applyChurn(churn, s, cal.btyd, (p) => btydOutputs(p, model, s, unit));
  const recency = Float64Array.from(s.tDays, (t, i) => t - s.txDays[i]!);
  const rate = mean(churned);
  const byRisk = ascending(risk);
  const byRecency = ascending(recency);
  const cutDay = (k: number) => h.cuts[k]!.day - h.cuts[cal.k]!.day;
  const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
  return {
    model,
    calibrationEnd: h.cuts[cal.k]!.at.toISOString(),
    holdoutEnd: h.cuts[kHold]!.at.toISOString(),
    customers: s.x.length,
    holdoutDays: Math.round(cutDay(kHold) * 100) / 100,
    predictedPurchases: Math.round(sumP * 10) / 10,
    actualPurchases: sumA,
    meanAbsoluteError: r4(mae / Math.max(1, actual.length)),
    churnDays: Math.round(cutDay(kChurn) * 100) / 100,
    churnAuc: r4(auc(risk, churned, byRisk)),
    recencyAuc: r4(auc(recency, churned, byRecency)),
    brier: r4(brier(risk, churned)),
    baseRateBrier: r4(rate * (1 - rate)),
    churnRate: r4(rate),
    meanChurnRisk: r4(mean(risk)),
    churnModel: churn.kind,
    churnModelReason: churn.reason,
    topShare: TOP_SHARE,
    topChurned: r4(precisionAtTop(risk, churned, TOP_SHARE, byRisk)),
    topChurnedByRecency: r4(precisionAtTop(recency, churned, TOP_SHARE, byRecency)),
    calibration: calibrationDeciles(risk, churned, byRisk).map((d) => ({ ...d, predicted: r4(d.predicted), observed: r4(d.observed) })),
  };
}

export function earliestDay(h: History): number {
  let m = Infinity;
  for (const d of h.firstDay) if (d < m) m = d;
  return m;
}

export const CHURN_MS = CHURN_DAYS * DAY_MS;
export { UNIT_DAYS };
