import type { BgNbdParams } from './bgnbd';
import type { BtydOutputs } from './btyd';
import type { CutSummary } from './history';
import { contributions, predictLogistic, trainLogistic, type Columns, type Logistic } from './logistic';

/** Below these a workspace's own history is too thin to learn churn from: a stated rule stands in. */
export const MIN_HISTORY_DAYS = 90;
export const MIN_TRAINING_CUSTOMERS = 200;
/** The churn window: churnRisk is P(no purchase in the next 90 days). */
export const CHURN_DAYS = 90;

/** The features, in days whatever the purchase model's time unit; logs tame the long tails. */
export const FEATURES: Array<{ name: string; label: string }> = [
  { name: 'logRecency', label: 'days since the last purchase' },
  { name: 'logFrequency', label: 'number of purchases' },
  { name: 'logAge', label: 'time since the first purchase' },
  { name: 'logAvgSpend', label: 'average spend per purchase day' },
  { name: 'logPurchases90d', label: 'purchases in the last 90 days' },
  { name: 'oneTime', label: 'bought only once' },
  { name: 'gapVsRhythm', label: 'time since the last purchase against their usual gap' },
  { name: 'pAlive', label: 'probability of still being a customer (purchase model)' },
  { name: 'logExpected90d', label: 'expected purchases in the next 90 days (purchase model)' },
  { name: 'btydNoPurchase90d', label: 'purchase model\'s chance of no purchase in 90 days' },
];

export type ChurnRule = 'recency' | 'btyd';

/** What makes churnRisk: a logistic model learned on the workspace, or a stated rule (and why). */
export interface ChurnModel {
  kind: 'learned' | ChurnRule;
  logistic: Logistic | null; // the recency rule is a one-feature logistic, calibrated the same way
  reason: string | null;
  flagged: boolean; // the learned model ranked worse than recency in validation
  /** The most recent window's cut-off, customers and churn rate; every window's; all rows learned from. */
  trainedOn: { cutoff: string; customers: number; churnRate: number; rows?: number; rowsChurnRate?: number; windows?: Array<{ cutoff: string; customers: number; churnRate: number }> } | null;
  /**
   * The purchase model's parameters as fitted at the training cut-off. The BTYD features are
   * computed with these at training and when applied, so a feature means the same on both sides:
   * with each cut-off's own fit they drift (on the Online Retail sample a fit that finds no
   * drop-out puts every pAlive near 1 at one cut-off and not at the other), and the mean churnRisk
   * was 0.23 above the observed rate; with the training fit's parameters it is 0.07 above.
   */
  btydParams: BgNbdParams | null;
}

/** BTYD outputs for the customers being scored, under given parameters (the fit's model and time unit). */
export type OutputsWith = (p: BgNbdParams) => BtydOutputs;

export const RULES: Record<ChurnRule, string> = {
  recency: 'days since the last purchase alone, calibrated on the workspace\'s last 90 days',
  btyd: 'the purchase model\'s own probability of no purchase in the next 90 days',
};

/** Feature columns for the customers of one cut-off, with the purchase model's outputs there. */
export function featureColumns(s: CutSummary, b: BtydOutputs, names: string[] = FEATURES.map((f) => f.name)): Columns {
  const n = s.x.length;
  const all: Record<string, (i: number) => number> = {
    logRecency: (i) => Math.log1p(Math.max(0, s.tDays[i]! - s.txDays[i]!)),
    logFrequency: (i) => Math.log1p(s.x[i]! + 1),
    logAge: (i) => Math.log1p(s.tDays[i]!),
    logAvgSpend: (i) => Math.log1p(Math.max(0, s.total[i]! / (s.x[i]! + 1))),
    logPurchases90d: (i) => Math.log1p(s.n90[i]!),
    oneTime: (i) => (s.x[i]! === 0 ? 1 : 0),
    gapVsRhythm: (i) => (s.x[i]! > 0 ? Math.log((1 + s.tDays[i]! - s.txDays[i]!) / (1 + s.txDays[i]! / s.x[i]!)) : 0),
    pAlive: (i) => b.pAlive[i]!,
    logExpected90d: (i) => Math.log1p(b.expected90d[i]!),
    btydNoPurchase90d: (i) => b.none90d[i]!,
  };
  return names.map((name) => Float64Array.from({ length: n }, (_, i) => all[name]!(i)));
}

/**
 * Rows a churn model is trained on at most: a dozen coefficients are pinned down long before this,
 * and above it Newton's passes cost seconds (4.4 s measured on 754k customers).
 * Larger workspaces train on every k-th customer in id order, the rows shared out over the windows.
 */
export const MAX_TRAINING_ROWS = 250_000;

/** One training window: the customers of a cut-off with their features there, labelled by the 90 days after. */
export interface TrainingWindow {
  cutoff: Date;
  s: CutSummary;
  b: BtydOutputs;
  churned: Uint8Array;
}

/** Every k-th customer of a window (k from its share of MAX_TRAINING_ROWS); all of them when they fit. */
export function sampleRows(n: number, rows: number): Uint32Array | null {
  if (n <= rows) return null;
  const step = n / rows;
  return Uint32Array.from({ length: rows }, (_, i) => Math.floor(i * step));
}

const rateOf = (y: Uint8Array) => {
  let r = 0;
  for (const v of y) r += v;
  return Math.round((r / Math.max(1, y.length)) * 1e4) / 1e4;
};

/**
 * Learns on the windows stacked, the most recent first (its cut-off and customers are `trainedOn`'s).
 * Several windows, 30 days apart, average over what one 90-day stretch happened to do: the model's
 * mean risk follows the training rows' churn rate, and one window's rate is one season's.
 */
export function train(kind: 'learned' | 'recency', windows: TrainingWindow[], btydParams: BgNbdParams): ChurnModel {
  const names = kind === 'learned' ? FEATURES.map((f) => f.name) : ['logRecency'];
  const cols = windows.map((w) => featureColumns(w.s, w.b, names));
  const total = windows.reduce((n, w) => n + w.churned.length, 0);
  const X = names.map(() => new Float64Array(total));
  const y = new Uint8Array(total);
  let o = 0;
  windows.forEach((w, k) => {
    const n = w.churned.length;
    cols[k]!.forEach((c, j) => X[j]!.set(c, o));
    y.set(w.churned, o);
    o += n;
  });
  const pick = sampleRows(total, MAX_TRAINING_ROWS);
  const logistic = pick ? trainLogistic(names, X.map((c) => Float64Array.from(pick, (i) => c[i]!)), Uint8Array.from(pick, (i) => y[i]!)) : trainLogistic(names, X, y);
  const view = (w: TrainingWindow) => ({ cutoff: w.cutoff.toISOString(), customers: w.churned.length, churnRate: rateOf(w.churned) });
  return { kind, logistic, reason: null, flagged: false, trainedOn: { ...view(windows[0]!), rows: total, rowsChurnRate: rateOf(y), windows: windows.map(view) }, btydParams };
}

export function ruleModel(reason: string): ChurnModel {
  return { kind: 'btyd', logistic: null, reason, flagged: false, trainedOn: null, btydParams: null };
}

/** The BTYD outputs the churn model's features need: under its training parameters when it has them. */
const featureOutputs = (m: ChurnModel, own: BtydOutputs, outputsWith: OutputsWith) => (m.btydParams && m.logistic?.features.some(usesBtyd) ? outputsWith(m.btydParams) : own);
const usesBtyd = (f: string) => f === 'pAlive' || f === 'logExpected90d' || f === 'btydNoPurchase90d';

export function applyChurn(m: ChurnModel, s: CutSummary, own: BtydOutputs, outputsWith: OutputsWith): Float64Array {
  if (!m.logistic) return Float64Array.from(own.none90d);
  return predictLogistic(m.logistic, featureColumns(s, featureOutputs(m, own, outputsWith), m.logistic.features));
}

/** A feature's value as a marketer reads it (the model sees logs and ratios). */
const SHOWN: Record<string, (v: number) => string> = {
  logRecency: (v) => `${Math.round(Math.expm1(v))} days`,
  logFrequency: (v) => `${Math.round(Math.expm1(v))} purchase days`,
  logAge: (v) => `${Math.round(Math.expm1(v))} days`,
  logAvgSpend: (v) => `${Math.expm1(v).toFixed(2)}`,
  logPurchases90d: (v) => `${Math.round(Math.expm1(v))}`,
  oneTime: (v) => (v ? 'yes' : 'no'),
  gapVsRhythm: (v) => `${Math.exp(v).toFixed(1)} times their usual gap`,
  pAlive: (v) => `${Math.round(v * 100)}%`,
  logExpected90d: (v) => Math.expm1(v).toFixed(2),
  btydNoPurchase90d: (v) => `${Math.round(v * 100)}%`,
};

/** The three features that push this customer's churnRisk furthest from the average customer's. */
export function topFactors(m: ChurnModel, s: CutSummary, own: BtydOutputs, outputsWith: OutputsWith, i: number, count = 3) {
  if (!m.logistic) return [];
  const cols = featureColumns(s, featureOutputs(m, own, outputsWith), m.logistic.features);
  const x = cols.map((c) => c[i]!);
  const contrib = contributions(m.logistic, x);
  return m.logistic.features
    .map((name, j) => ({ feature: name, label: FEATURES.find((f) => f.name === name)?.label ?? name, value: x[j]!, shown: SHOWN[name]?.(x[j]!) ?? String(x[j]), weight: contrib[j]!, direction: contrib[j]! > 0 ? ('raises' as const) : ('lowers' as const) }))
    .sort((p, q) => Math.abs(q.weight) - Math.abs(p.weight))
    .slice(0, count);
}
