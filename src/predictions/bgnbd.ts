import { gaussLegendre, hyp2f1, lgamma, logAddExp, minimizeWithRestarts } from './math';

/**
 * The BG/NBD model of repeat purchasing (Fader, Hardie and Lee 2005, "Counting Your Customers
 * the Easy Way"). While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
 * after each purchase they drop out with probability p ~ Beta(a, b).
 */
export interface BgNbdParams {
  r: number;
  alpha: number;
  a: number;
  b: number;
}

/** Customers grouped by identical (x, t_x, T): n of them share one likelihood term. */
export interface Triples {
  x: Float64Array;
  tx: Float64Array;
  T: Float64Array;
  n: Float64Array;
}

/** Groups per-customer summaries into distinct triples: fits then cost one term per group. */
export function toTriples(x: ArrayLike<number>, tx: ArrayLike<number>, T: ArrayLike<number>): Triples {
  const groups = new Map<string, number>();
  const out = { x: [] as number[], tx: [] as number[], T: [] as number[], n: [] as number[] };
  for (let i = 0; i < x.length; i++) {
    const key = `${x[i]}|${tx[i]}|${T[i]}`;
    const g = groups.get(key);
    if (g !== undefined) out.n[g]!++;
    else {
      groups.set(key, out.n.length);
      out.x.push(x[i]!);
      out.tx.push(tx[i]!);
      out.T.push(T[i]!);
      out.n.push(1);
    }
  }
  return { x: Float64Array.from(out.x), tx: Float64Array.from(out.tx), T: Float64Array.from(out.T), n: Float64Array.from(out.n) };
}

/** Total log-likelihood over the groups (equation 6 of the paper, in log space). */
export function bgnbdLogLikelihood(p: BgNbdParams, d: Triples): number {
  const { r, alpha, a, b } = p;
  const lnAlpha = Math.log(alpha);
  const base = lgamma(a + b) - lgamma(b) - lgamma(r);
  // Terms that depend on x alone are computed once per distinct x.
  const byX = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < d.n.length; i++) {
    const x = d.x[i]!;
    let gx = byX.get(x);
    if (gx === undefined) {
      gx = base + lgamma(r + x) + r * lnAlpha + lgamma(b + x) - lgamma(a + b + x);
      byX.set(x, gx);
    }
    const a3 = -(r + x) * Math.log(alpha + d.T[i]!);
    const a4 = x > 0 ? Math.log(a) - Math.log(b + x - 1) - (r + x) * Math.log(alpha + d.tx[i]!) : -Infinity;
    total += d.n[i]! * (gx + logAddExp(a3, a4));
  }
  return total;
}

export interface BgNbdFit {
  params: BgNbdParams;
  logLikelihood: number;
  iterations: number;
}

/** Maximum likelihood by Nelder-Mead on log-parameters, from a few starts, with restarts. */
export function fitBgNbd(d: Triples): BgNbdFit {
  let customers = 0;
  let meanT = 0;
  for (let i = 0; i < d.n.length; i++) {
    customers += d.n[i]!;
    meanT += d.n[i]! * d.T[i]!;
  }
  meanT = Math.max(meanT / customers, 1e-3);
  const toParams = (v: number[]): BgNbdParams => ({ r: Math.exp(v[0]!), alpha: Math.exp(v[1]!), a: Math.exp(v[2]!), b: Math.exp(v[3]!) });
  // Scaled by the customer count so the stopping tolerance means the same at any size.
  const objective = (v: number[]) => {
    if (v.some((k) => Math.abs(k) > 30)) return Infinity;
    return -bgnbdLogLikelihood(toParams(v), d) / customers;
  };
  const lnT = Math.log(meanT);
  const best = minimizeWithRestarts(objective, [
    [0, 0, 0, 0],
    [Math.log(0.5), lnT - 2, 0, Math.log(2)],
    [Math.log(0.25), lnT - 3, Math.log(0.8), Math.log(2.5)],
  ]);
  return { params: toParams(best.x), logLikelihood: -best.value * customers, iterations: best.iterations };
}

/** P(alive | x, t_x, T) (equation 11): a customer with no repeat purchase has not had a chance to drop out. */
export function pAlive(p: BgNbdParams, x: number, tx: number, T: number): number {
  if (x === 0) return 1;
  const { r, alpha, a, b } = p;
  const logRatio = Math.log(a) - Math.log(b + x - 1) + (r + x) * (Math.log(alpha + T) - Math.log(alpha + tx));
  // 1 / (1 + e^logRatio), written to stay finite for large ratios.
  return logRatio > 0 ? Math.exp(-logRatio) / (1 + Math.exp(-logRatio)) : 1 / (1 + Math.exp(logRatio));
}

/**
 * E[Y(t) | x, t_x, T]: expected purchases in the next t time units (equation 10). Its
 * hypergeometric series is taken in whichever of two equal forms has bounded terms:
 *   ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
 * z = t/(alpha+T+t): the terms of the first grow like (1-z)^-(r+x) (heavy buyers), those of the
 * second like (1-z)^-(a-1). When both exponents are large (a fit with a in the thousands or more,
 * as when the data show almost no drop-out) neither series is usable, and the expectation is
 * integrated directly over the drop-out probability instead (expectedByQuadrature).
 */
export function expectedPurchases(p: BgNbdParams, t: number, x: number, tx: number, T: number): number {
  if (t <= 0) return 0;
  const { r, alpha, b } = p;
  // At a = 1 the closed form is 0/0; the expectation is continuous in a, so step off the pole.
  const a = Math.abs(p.a - 1) < 1e-8 ? 1 + 1e-8 : p.a;
  const z = t / (alpha + T + t);
  const growth = -Math.log1p(-z);
  const alive = pAlive(p, x, tx, T);
  let f: number;
  if ((a - 1) * growth <= Math.min(200, (r + x) * growth)) {
    f = Math.pow(1 - z, a - 1) * hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z);
  } else if ((r + x) * growth <= 200) {
    f = Math.pow((alpha + T) / (alpha + T + t), r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z);
  } else {
    return Math.max(0, alive * expectedByQuadrature(p, t, x, T));
  }
  const head = ((a + b + x - 1) / (a - 1)) * (1 - f);
  return Math.max(0, head * alive);
}

const GL = gaussLegendre(64);

/**
 * E[Y(t) | alive, x, T] as an integral. Given alive, lambda ~ Gamma(r+x, alpha+T) and the drop-out
 * probability q ~ Beta(a, b+x), independently; a customer with (lambda, q) makes (1 - e^(-lambda q t))/q
 * purchases in t on average, so E = E_q[(1 - ((alpha+T)/(alpha+T+q t))^(r+x)) / q]. Used only when
 * a and r+x are both large, where Beta(a, b+x) is narrow and close to normal: the integral runs
 * over its mean +- 10 sd, normalised numerically.
 */
export function expectedByQuadrature(p: BgNbdParams, t: number, x: number, T: number): number {
  const A = p.a;
  const B = p.b + x;
  const mean = A / (A + B);
  const sd = Math.sqrt((A * B) / ((A + B) ** 2 * (A + B + 1)));
  const lo = Math.max(1e-300, mean - 10 * sd);
  const hi = Math.min(1, mean + 10 * sd);
  const g = (q: number) => -Math.expm1(-(p.r + x) * Math.log1p((q * t) / (p.alpha + T))) / q;
  const logDensity = (q: number) => (A - 1) * Math.log(q) + (B - 1) * Math.log1p(-q);
  const peak = logDensity(Math.min(Math.max(mean, lo), hi));
  let num = 0;
  let den = 0;
  for (let i = 0; i < GL.x.length; i++) {
    const q = lo + ((GL.x[i]! + 1) / 2) * (hi - lo);
    const w = GL.w[i]! * Math.exp(logDensity(q) - peak);
    num += w * g(q);
    den += w;
  }
  return num / den;
}
