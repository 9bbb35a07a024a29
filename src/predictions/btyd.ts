import { expectedPurchases, fitBgNbd, groupIndex, pAlive, probNoPurchase, toTriples, type BgNbdFit, type BgNbdParams } from './bgnbd';
import type { Summary, TimeUnit } from './repo';

export type PurchaseModel = 'mbg-nbd' | 'bg-nbd';
export const PURCHASE_MODELS = ['mbg-nbd', 'bg-nbd'] as const;
export const UNIT_DAYS: Record<TimeUnit, number> = { day: 1, week: 7 };

export const isModified = (m: PurchaseModel) => m === 'mbg-nbd';

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

export function repeatBuyers(s: Summary): number {
  let n = 0;
  for (let i = 0; i < s.x.length; i++) if (s.x[i]! >= 1) n++;
  return n;
}

/** `warm`: a neighbouring fit's optimum (the same history 90 days later), tried first and alone if it converges. */
export function fitPurchaseModel(s: Summary, unit: TimeUnit, model: PurchaseModel, warm?: BgNbdParams): BgNbdFit {
  const { x, tx, T } = modelInputs(s, unit);
  const d = toTriples(x, tx, T);
  if (warm) {
    const f = fitBgNbd(d, isModified(model), { starts: [[warm.r, warm.alpha, warm.a, warm.b].map(Math.log)] });
    if (f.converged) return f;
  }
  return fitBgNbd(d, isModified(model));
}

export interface BtydOutputs {
  pAlive: Float64Array;
  expected90d: Float64Array;
  expected365d: Float64Array;
  none90d: Float64Array; // P(no purchase in the next 90 days)
}

/**
 * Per-customer outputs; identical (x, t_x, T) share one evaluation of the series. The 365-day
 * expectation (for spend) is only worked out when asked: the churn features do not need it.
 */
export function btydOutputs(p: BgNbdParams, model: PurchaseModel, s: Summary, unit: TimeUnit, horizonDays: number[] = [], withSpend = false): BtydOutputs & { horizons: Float64Array[] } {
  const m = isModified(model);
  const { x, tx, T } = modelInputs(s, unit);
  const k = UNIT_DAYS[unit];
  const { group, first } = groupIndex(x, tx, T);
  const G = first.length;
  const gA = new Float64Array(G);
  const g90 = new Float64Array(G);
  const g365 = new Float64Array(G);
  const gN = new Float64Array(G);
  const gH = horizonDays.map(() => new Float64Array(G));
  first.forEach((i, g) => {
    gA[g] = pAlive(p, x[i]!, tx[i]!, T[i]!, m);
    g90[g] = expectedPurchases(p, 90 / k, x[i]!, tx[i]!, T[i]!, m);
    if (withSpend) g365[g] = expectedPurchases(p, 365 / k, x[i]!, tx[i]!, T[i]!, m);
    gN[g] = probNoPurchase(p, 90 / k, x[i]!, tx[i]!, T[i]!, m);
    horizonDays.forEach((h, j) => (gH[j]![g] = expectedPurchases(p, h / k, x[i]!, tx[i]!, T[i]!, m)));
  });
  const spread = (v: Float64Array) => Float64Array.from(group, (g) => v[g]!);
  return { pAlive: spread(gA), expected90d: spread(g90), expected365d: spread(g365), none90d: spread(gN), horizons: gH.map(spread) };
}
