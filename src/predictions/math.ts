/**
 * Numerical building blocks for the customer-base models, in plain TypeScript: log-gamma,
 * log-sum-exp, digamma, the Gaussian hypergeometric series and a BFGS minimiser. Likelihoods are
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
  /** False when the search ran out of iterations or never found a finite value. */
  converged: boolean;
}

/** ψ(x) = d/dx ln Γ(x) for x > 0: the recurrence up to x >= 10, then the asymptotic series. */
export function digamma(x: number): number {
  let acc = 0;
  while (x < 10) {
    acc -= 1 / x;
    x += 1;
  }
  const inv2 = 1 / (x * x);
  return acc + Math.log(x) - 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 * (1 / 252 - inv2 * (1 / 240 - inv2 * (1 / 132)))));
}

/** A smooth objective returning its value and gradient at x (non-finite value: outside the domain). */
export type ValueAndGradient = (x: number[]) => { value: number; grad: number[] };

const dot = (u: number[], v: number[]) => u.reduce((s, ui, i) => s + ui * v[i]!, 0);

/**
 * BFGS with an Armijo backtracking line search. With analytic gradients it needs tens of
 * evaluations where Nelder-Mead needs thousands, which is what makes a fit over a million customers
 * cheap. Steps are capped (callers work on log-parameters: a step of 5 is a factor e^5), the
 * inverse-Hessian update is skipped when the curvature condition fails, and the search stops when
 * the gradient vanishes or the value has stopped moving (a parameter running off along a flat
 * ridge, as when the data show no drop-out).
 */
export function bfgs(fg: ValueAndGradient, start: number[], opts: { maxIter?: number; gtol?: number; ftol?: number; maxStep?: number } = {}): MinimizeResult {
  const n = start.length;
  const maxIter = opts.maxIter ?? 400;
  const gtol = opts.gtol ?? 1e-10;
  const ftol = opts.ftol ?? 1e-15;
  const maxStep = opts.maxStep ?? 5;
  const identity = (): number[][] => Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0)));
  let x = start.slice();
  let cur = fg(x);
  if (!Number.isFinite(cur.value)) return { x, value: Infinity, iterations: 0, converged: false };
  let H = identity();
  let fresh = true;
  let still = 0;
  let it = 0;
  for (; it < maxIter; it++) {
    const g = cur.grad;
    if (Math.max(...g.map(Math.abs)) <= gtol) break;
    let d = H.map((row) => -dot(row, g));
    let slope = dot(g, d);
    if (!(slope < 0)) {
      H = identity();
      fresh = true;
      d = g.map((v) => -v);
      slope = dot(g, d);
    }
    const longest = Math.max(...d.map(Math.abs));
    let t = longest > maxStep ? maxStep / longest : 1;
    let next: { value: number; grad: number[] } | null = null;
    let xn: number[] = x;
    for (let k = 0; k < 60; k++) {
      xn = x.map((v, i) => v + t * d[i]!);
      const trial = fg(xn);
      if (Number.isFinite(trial.value) && trial.value <= cur.value + 1e-4 * t * slope) {
        next = trial;
        break;
      }
      t *= 0.3;
    }
    if (!next) {
      if (fresh) break; // not even steepest descent makes progress: a minimum to working precision
      H = identity();
      fresh = true;
      continue;
    }
    const s = xn.map((v, i) => v - x[i]!);
    const y = next.grad.map((v, i) => v - g[i]!);
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      if (fresh) {
        // Scale the first guess of the inverse Hessian to the curvature just seen.
        const scale = sy / dot(y, y);
        H = H.map((row) => row.map((v) => v * scale));
      }
      const Hy = H.map((row) => dot(row, y));
      const yHy = dot(y, Hy);
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) H[i]![j]! += ((sy + yHy) * s[i]! * s[j]!) / (sy * sy) - (Hy[i]! * s[j]! + s[i]! * Hy[j]!) / sy;
      fresh = false;
    }
    const gain = cur.value - next.value;
    x = xn;
    cur = next;
    still = gain <= ftol * (Math.abs(cur.value) + ftol) ? still + 1 : 0;
    if (still >= 3) break;
  }
  return { x, value: cur.value, iterations: it, converged: it < maxIter && Number.isFinite(cur.value) };
}

/** BFGS from several starts; the best end point wins. */
export function bfgsFromStarts(fg: ValueAndGradient, starts: number[][], opts: Parameters<typeof bfgs>[2] = {}): MinimizeResult {
  let best: MinimizeResult | null = null;
  let iterations = 0;
  for (const s of starts) {
    const r = bfgs(fg, s, opts);
    iterations += r.iterations;
    if (!best || r.value < best.value) best = r;
  }
  return { ...best!, iterations };
}
