/** Measures of a probability forecast against what happened: ranking (AUC), accuracy (Brier), calibration. */

/** Indices of `score` in ascending order (a typed array sorts a million in well under a second). */
export function ascending(score: ArrayLike<number>): Uint32Array {
  return Uint32Array.from({ length: score.length }, (_, i) => i).sort((a, b) => score[a]! - score[b]!);
}

/** ROC AUC of `score` for the positive label: the chance a random positive outranks a random negative, ties half. */
export function auc(score: ArrayLike<number>, label: ArrayLike<number>, order?: Uint32Array): number {
  const n = score.length;
  const idx = order ?? ascending(score);
  let rankSum = 0;
  let pos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j < n && score[idx[j]!] === score[idx[i]!]) j++;
    const mid = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) if (label[idx[k]!]) (rankSum += mid), pos++;
    i = j;
  }
  const neg = n - pos;
  return pos === 0 || neg === 0 ? NaN : (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function brier(p: ArrayLike<number>, label: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < p.length; i++) s += (p[i]! - label[i]!) ** 2;
  return s / p.length;
}

export function mean(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return v.length ? s / v.length : NaN;
}

/** Customers in ten equal groups by predicted probability: mean predicted against observed rate in each. */
export function calibrationDeciles(p: ArrayLike<number>, label: ArrayLike<number>, order?: Uint32Array) {
  const idx = order ?? ascending(p);
  const out: Array<{ decile: number; customers: number; predicted: number; observed: number }> = [];
  for (let d = 0; d < 10; d++) {
    const lo = Math.floor((d * idx.length) / 10);
    const hi = Math.floor(((d + 1) * idx.length) / 10);
    if (hi <= lo) continue;
    let sp = 0;
    let so = 0;
    for (let k = lo; k < hi; k++) {
      sp += p[idx[k]!]!;
      so += label[idx[k]!]!;
    }
    out.push({ decile: d + 1, customers: hi - lo, predicted: sp / (hi - lo), observed: so / (hi - lo) });
  }
  return out;
}

/** Share of positives among the top `share` of customers by score (ties broken by order). */
export function precisionAtTop(score: ArrayLike<number>, label: ArrayLike<number>, share: number, order?: Uint32Array): number {
  const idx = order ?? ascending(score);
  const k = Math.max(1, Math.round(idx.length * share));
  let hits = 0;
  for (let i = idx.length - k; i < idx.length; i++) hits += label[idx[i]!]!;
  return hits / k;
}

/** Counts of values in ten bins of width 0.1 over [0, 1]. */
export function histogram(v: ArrayLike<number>) {
  const bins = new Array(10).fill(0);
  for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i]!)) bins[Math.min(9, Math.max(0, Math.floor(v[i]! * 10)))]++;
  return bins.map((customers, i) => ({ from: i / 10, to: (i + 1) / 10, customers }));
}
