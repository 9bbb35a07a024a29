/**
 * L2-regularised logistic regression by Newton's method (iteratively reweighted least squares) on
 * standardised features. A handful of features and up to millions of rows: each step is one pass
 * building a d x d Hessian, and it converges in under ten steps. The penalty leaves the intercept
 * alone, so the mean prediction on the training rows equals their observed rate (calibration in
 * the large, by construction of the score equations).
 */
export interface Logistic {
  features: string[];
  mean: number[];
  sd: number[];
  coef: number[]; // on standardised features
  intercept: number;
}

/** Rows are stored feature-major: X[j] is feature j for every row. */
export type Columns = Float64Array[];

function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const d = M[c]![c]!;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / d;
      if (f !== 0) for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((row, i) => row[n]! / row[i]!);
}

export function trainLogistic(features: string[], X: Columns, y: Uint8Array, lambda = 1, maxIter = 25): Logistic {
  const d = X.length;
  const n = y.length;
  const D = d + 1;
  const mean = X.map((col) => col.reduce((s, v) => s + v, 0) / n);
  const sd = X.map((col, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (col[i]! - mean[j]!) ** 2;
    return Math.sqrt(s / n) || 1;
  });
  // Row-major with a leading 1 (the intercept): one contiguous row per customer in the hot loop.
  const Z = new Float64Array(n * D);
  for (let i = 0; i < n; i++) {
    Z[i * D] = 1;
    for (let j = 0; j < d; j++) Z[i * D + j + 1] = (X[j]![i]! - mean[j]!) / sd[j]!;
  }
  let rate = 0;
  for (let i = 0; i < n; i++) rate += y[i]!;
  rate = Math.min(Math.max(rate / n, 1e-6), 1 - 1e-6);
  let w = new Array<number>(D).fill(0);
  w[0] = Math.log(rate / (1 - rate));
  const g = new Float64Array(D);
  const H = new Float64Array(D * D);
  for (let it = 0; it < maxIter; it++) {
    g.fill(0);
    H.fill(0);
    for (let i = 0; i < n; i++) {
      const o = i * D;
      let eta = 0;
      for (let a = 0; a < D; a++) eta += w[a]! * Z[o + a]!;
      const p = 1 / (1 + Math.exp(-eta));
      const r = y[i]! - p;
      const v = p * (1 - p);
      for (let a = 0; a < D; a++) {
        const za = Z[o + a]!;
        g[a] += r * za;
        const va = v * za;
        const ha = a * D;
        for (let b = 0; b <= a; b++) H[ha + b] += va * Z[o + b]!;
      }
    }
    const Hm = Array.from({ length: D }, (_, a) => Array.from({ length: D }, (_, b) => (b <= a ? H[a * D + b]! : H[b * D + a]!)));
    const gv = Array.from(g);
    for (let j = 1; j < D; j++) {
      gv[j]! -= lambda * w[j]!;
      Hm[j]![j]! += lambda;
    }
    const step = solve(Hm, gv);
    w = w.map((v, j) => v + step[j]!);
    if (Math.max(...step.map(Math.abs)) < 1e-7) break;
  }
  return { features, mean, sd, coef: w.slice(1), intercept: w[0]! };
}

/** Per feature, coef * standardised value: its push on the log-odds against the average customer. */
export function contributions(m: Logistic, x: number[]): number[] {
  return m.coef.map((c, j) => (c * (x[j]! - m.mean[j]!)) / m.sd[j]!);
}

export function predictLogistic(m: Logistic, X: Columns): Float64Array {
  const n = X[0]?.length ?? 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let eta = m.intercept;
    for (let j = 0; j < m.coef.length; j++) eta += (m.coef[j]! * (X[j]![i]! - m.mean[j]!)) / m.sd[j]!;
    out[i] = 1 / (1 + Math.exp(-eta));
  }
  return out;
}
