/**
 * Numerical building blocks for the customer-base models, in plain TypeScript: log-gamma,
 * log-sum-exp, the Gaussian hypergeometric series and a Nelder-Mead minimiser. Likelihoods are
 * kept in log space throughout, since the products over thousands of customers underflow.
 */

// Lanczos approximation (g = 7, n = 9): about 15 significant digits for x > 0.
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

/** ln Γ(x) for x > 0 (reflection for x < 0.5 keeps the accuracy near zero). */
export function lgamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lgamma(1 - x);
  const z = x - 1;
  let s = LANCZOS[0]!;
  for (let i = 1; i < 9; i++) s += LANCZOS[i]! / (z + i);
  const t = z + 7.5;
  return HALF_LOG_2PI + (z + 0.5) * Math.log(t) - t + Math.log(s);
}

/** ln(e^a + e^b) without overflow; -Infinity terms are neutral. */
export function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/**
 * Gaussian hypergeometric 2F1(a, b; c; z) by its power series, for 0 <= z < 1. Callers arrange
 * the parameters (Euler's transformation) so that the terms stay bounded; the loop stops when a
 * term no longer changes the sum, or after maxTerms (z very close to 1).
 */
export function hyp2f1(a: number, b: number, c: number, z: number, maxTerms = 200_000): number {
  if (z === 0) return 1;
  if (!(z > 0 && z < 1)) throw new RangeError(`hyp2f1 needs 0 <= z < 1, got ${z}`);
  let term = 1;
  let sum = 1;
  for (let n = 0; n < maxTerms; n++) {
    term *= ((a + n) * (b + n)) / ((c + n) * (n + 1)) * z;
    sum += term;
    if (Math.abs(term) <= 1e-15 * Math.abs(sum)) break;
  }
  return sum;
}

/** Gauss-Legendre nodes and weights on [-1, 1] (Newton on the Legendre recurrence). */
export function gaussLegendre(n: number): { x: Float64Array; w: Float64Array } {
  const x = new Float64Array(n);
  const w = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let z = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 0;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = z;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * z * p1 - (k - 1) * p0) / k];
      dp = (n * (z * p1 - p0)) / (z * z - 1);
      const dz = p1 / dp;
      z -= dz;
      if (Math.abs(dz) < 1e-15) break;
    }
    x[i] = z;
    w[i] = 2 / ((1 - z * z) * dp * dp);
  }
  return { x, w };
}

export interface MinimizeResult {
  x: number[];
  value: number;
  iterations: number;
}

/**
 * Nelder-Mead simplex minimisation (Lagarias et al. coefficients). Derivative-free, so it copes
 * with the flat, curved valleys of these likelihoods; callers work on log-parameters so that the
 * search is unconstrained, and restart from the best point to escape a collapsed simplex.
 */
export function nelderMead(f: (x: number[]) => number, start: number[], opts: { step?: number; maxIter?: number; tol?: number } = {}): MinimizeResult {
  const n = start.length;
  const step = opts.step ?? 0.5;
  const maxIter = opts.maxIter ?? 2000 * n;
  const tol = opts.tol ?? 1e-10;
  const val = (x: number[]) => {
    const v = f(x);
    return Number.isFinite(v) ? v : Infinity;
  };
  let simplex: number[][] = [start.slice()];
  for (let i = 0; i < n; i++) {
    const p = start.slice();
    p[i]! += step;
    simplex.push(p);
  }
  let values = simplex.map(val);
  let it = 0;
  // A degenerate fit (a parameter running off along a flat ridge) improves by crumbs forever:
  // stop when 100n iterations have gained less than 1e-11 of the value.
  let checkpoint = Infinity;
  for (; it < maxIter; it++) {
    if (it % (100 * n) === 0 && it > 0) {
      const bestNow = Math.min(...values);
      if (checkpoint - bestNow <= 1e-11 * (Math.abs(bestNow) + 1e-11)) break;
      checkpoint = bestNow;
    }
    const order = values.map((v, i) => i).sort((i, j) => values[i]! - values[j]!);
    simplex = order.map((i) => simplex[i]!);
    values = order.map((i) => values[i]!);
    const spread = Math.abs(values[n]! - values[0]!);
    const size = Math.max(...simplex.slice(1).map((p) => Math.max(...p.map((v, k) => Math.abs(v - simplex[0]![k]!)))));
    if (spread <= tol * (Math.abs(values[0]!) + tol) && size < 1e-7) break;
    const centroid = new Array(n).fill(0);
    for (let i = 0; i < n; i++) for (let k = 0; k < n; k++) centroid[k] += simplex[i]![k]! / n;
    const at = (t: number) => centroid.map((c, k) => c + t * (simplex[n]![k]! - c));
    const reflected = at(-1);
    const fr = val(reflected);
    if (fr < values[0]!) {
      const expanded = at(-2);
      const fe = val(expanded);
      if (fe < fr) [simplex[n], values[n]] = [expanded, fe];
      else [simplex[n], values[n]] = [reflected, fr];
    } else if (fr < values[n - 1]!) {
      [simplex[n], values[n]] = [reflected, fr];
    } else {
      const outside = fr < values[n]!;
      const contracted = at(outside ? -0.5 : 0.5);
      const fc = val(contracted);
      if (fc < (outside ? fr : values[n]!)) [simplex[n], values[n]] = [contracted, fc];
      else {
        for (let i = 1; i <= n; i++) {
          simplex[i] = simplex[i]!.map((v, k) => simplex[0]![k]! + 0.5 * (v - simplex[0]![k]!));
          values[i] = val(simplex[i]!);
        }
      }
    }
  }
  const best = values.indexOf(Math.min(...values));
  return { x: simplex[best]!, value: values[best]!, iterations: it };
}

/** Minimises from several starts and restarts from each result until it stops improving. */
export function minimizeWithRestarts(f: (x: number[]) => number, starts: number[][], restarts = 4): MinimizeResult {
  let best: MinimizeResult | null = null;
  for (const s of starts) {
    let r = nelderMead(f, s);
    for (let i = 0; i < restarts; i++) {
      const again = nelderMead(f, r.x, { step: 0.1 });
      const improved = r.value - again.value;
      r = again.value <= r.value ? { ...again, iterations: r.iterations + again.iterations } : r;
      if (improved < 1e-9) break;
    }
    if (!best || r.value < best.value) best = r;
  }
  return best!;
}
