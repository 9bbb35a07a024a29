import { bfgsFromStarts, digamma, gaussLegendre, hyp2f1, lgamma } from './math';

/**
 * The BG/NBD model of repeat purchasing (Fader, Hardie and Lee 2005, "Counting Your Customers
 * the Easy Way"). While alive a customer buys as a Poisson process with rate lambda ~ Gamma(r, alpha);
 * after each repeat purchase they drop out with probability p ~ Beta(a, b).
 *
 * The MBG/NBD (Batislam, Denizel and Filiztekin 2007; BTYDplus `mbgcbs`, lifetimes
 * `ModifiedBetaGeoFitter`) lets them drop out after the first purchase too, so a one-time buyer
 * can have lapsed. Its formulas are BG/NBD's with b + x - 1 read as b + x (one more chance to
 * stay), and the "second term" present for x = 0 as well: every function here takes `modified`.
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

/**
 * Which distinct (x, t_x, T) each customer has: group[i] is customer i's group, first[g] the first
 * customer of group g. Each coordinate is numbered by its distinct values first, so the combined
 * key is an exact integer (no string keys: a million customers group in a few hundred ms).
 */
export function groupIndex(x: ArrayLike<number>, tx: ArrayLike<number>, T: ArrayLike<number>): { group: Int32Array; first: number[] } {
  const ix = index(x);
  const itx = index(tx);
  const iT = index(T);
  const nTx = itx.distinct.length;
  const nT = iT.distinct.length;
  const groups = new Map<number, number>();
  const group = new Int32Array(x.length);
  const first: number[] = [];
  for (let i = 0; i < x.length; i++) {
    const key = (ix.at[i]! * nTx + itx.at[i]!) * nT + iT.at[i]!;
    let g = groups.get(key);
    if (g === undefined) {
      g = first.length;
      groups.set(key, g);
      first.push(i);
    }
    group[i] = g;
  }
  return { group, first };
}

/** Groups per-customer summaries into distinct triples: fits then cost one term per group. */
export function toTriples(x: ArrayLike<number>, tx: ArrayLike<number>, T: ArrayLike<number>): Triples {
  const { group, first } = groupIndex(x, tx, T);
  const n = new Float64Array(first.length);
  for (let i = 0; i < group.length; i++) n[group[i]!]++;
  return { x: Float64Array.from(first, (i) => x[i]!), tx: Float64Array.from(first, (i) => tx[i]!), T: Float64Array.from(first, (i) => T[i]!), n };
}

/**
 * The groups indexed for fast evaluation: a term's pieces that depend on x, t_x or T alone are
 * computed once per distinct value (a few hundred of each) instead of once per group.
 */
interface Compiled {
  xs: Float64Array; // distinct x
  nX: Float64Array; // customers per distinct x
  xi: Int32Array; // per group: index into xs
  Ts: Float64Array;
  ti: Int32Array;
  txs: Float64Array;
  tj: Int32Array;
  n: Float64Array;
  customers: number;
}

const compiledCache = new WeakMap<Triples, Compiled>();

function index(values: ArrayLike<number>): { distinct: Float64Array; at: Int32Array } {
  const pos = new Map<number, number>();
  const at = new Int32Array(values.length);
  const distinct: number[] = [];
  for (let i = 0; i < values.length; i++) {
    let k = pos.get(values[i]!);
    if (k === undefined) {
      k = distinct.length;
      pos.set(values[i]!, k);
      distinct.push(values[i]!);
    }
    at[i] = k;
  }
  return { distinct: Float64Array.from(distinct), at };
}

function compile(d: Triples): Compiled {
  let c = compiledCache.get(d);
  if (c) return c;
  const x = index(d.x);
  const T = index(d.T);
  const tx = index(d.tx);
  const nX = new Float64Array(x.distinct.length);
  let customers = 0;
  for (let i = 0; i < d.n.length; i++) {
    nX[x.at[i]!] += d.n[i]!;
    customers += d.n[i]!;
  }
  c = { xs: x.distinct, nX, xi: x.at, Ts: T.distinct, ti: T.at, txs: tx.distinct, tj: tx.at, n: d.n, customers };
  compiledCache.set(d, c);
  return c;
}

/**
 * Total log-likelihood over the groups (equation 6 of the paper, in log space) and its gradient
 * in (r, alpha, a, b). Per group: ln L = g(x) + ln(e^A3 + e^A4), A3 = -(r+x) ln(alpha+T),
 * A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x) for x > 0; the gradient weighs the derivatives
 * of A3 and A4 by their shares w3, w4 of the sum.
 */
export function bgnbdValueAndGradient(p: BgNbdParams, d: Triples, withGradient = true, modified = false): { value: number; grad: number[] } {
  const c = compile(d);
  const { r, alpha, a, b } = p;
  const s = modified ? 1 : 0;
  const lnA = Math.log(a);
  const lT = c.Ts.map((T) => Math.log(alpha + T));
  const ltx = c.txs.map((t) => Math.log(alpha + t));
  const iT = c.Ts.map((T) => 1 / (alpha + T));
  const itx = c.txs.map((t) => 1 / (alpha + t));
  const cA = c.xs.map((x) => (x > 0 || modified ? lnA - Math.log(b + x - 1 + s) : -Infinity));
  const W4 = new Float64Array(c.xs.length); // sum of n * w4 per x
  let total = 0;
  let gr = 0;
  let gAlpha = 0;
  for (let i = 0; i < c.n.length; i++) {
    const k = c.xi[i]!;
    const x = c.xs[k]!;
    const rx = r + x;
    const n = c.n[i]!;
    const lt = lT[c.ti[i]!]!;
    const A3 = -rx * lt;
    if (x > 0 || modified) {
      const lu = ltx[c.tj[i]!]!;
      const A4 = cA[k]! - rx * lu;
      const diff = A4 - A3;
      const e = Math.exp(-Math.abs(diff));
      const w4 = diff > 0 ? 1 / (1 + e) : e / (1 + e);
      const w3 = 1 - w4;
      total += n * (Math.max(A3, A4) + Math.log1p(e));
      if (withGradient) {
        gr -= n * (w3 * lt + w4 * lu);
        gAlpha -= n * rx * (w3 * iT[c.ti[i]!]! + w4 * itx[c.tj[i]!]!);
        W4[k] += n * w4;
      }
    } else {
      total += n * A3;
      if (withGradient) {
        gr -= n * lt;
        gAlpha -= n * rx * iT[c.ti[i]!]!;
      }
    }
  }
  const lnAlpha = Math.log(alpha);
  const base = lgamma(a + b) - lgamma(b) - lgamma(r);
  let ga = 0;
  let gb = 0;
  const psiAB = withGradient ? digamma(a + b) : 0;
  const psiB = withGradient ? digamma(b) : 0;
  const psiR = withGradient ? digamma(r) : 0;
  for (let k = 0; k < c.xs.length; k++) {
    const x = c.xs[k]!;
    const m = c.nX[k]!;
    total += m * (base + lgamma(r + x) + r * lnAlpha + lgamma(b + x + s) - lgamma(a + b + x + s));
    if (!withGradient) continue;
    const psiABX = digamma(a + b + x + s);
    gr += m * (digamma(r + x) - psiR + lnAlpha);
    gAlpha += (m * r) / alpha;
    ga += m * (psiAB - psiABX) + W4[k]! / a;
    gb += m * (psiAB - psiB + digamma(b + x + s) - psiABX) - (x > 0 || modified ? W4[k]! / (b + x - 1 + s) : 0);
  }
  return { value: total, grad: [gr, gAlpha, ga, gb] };
}

/** Total log-likelihood over the groups. */
export function bgnbdLogLikelihood(p: BgNbdParams, d: Triples, modified = false): number {
  return bgnbdValueAndGradient(p, d, false, modified).value;
}

export interface BgNbdFit {
  params: BgNbdParams;
  logLikelihood: number;
  iterations: number;
  /** False when the search ended without a finite optimum (the caller refuses such a fit). */
  converged: boolean;
}

/**
 * Maximum likelihood by BFGS on log-parameters (unconstrained, and the scales of alpha and of a, b
 * differ by orders of magnitude) with analytic gradients, from a few starts.
 */
export function fitBgNbd(d: Triples, modified = false, opts: { maxIter?: number; starts?: number[][] } = {}): BgNbdFit {
  const c = compile(d);
  const customers = c.customers;
  let meanT = 0;
  for (let i = 0; i < d.n.length; i++) meanT += d.n[i]! * d.T[i]!;
  meanT = Math.max(meanT / customers, 1e-3);
  const toParams = (v: number[]): BgNbdParams => ({ r: Math.exp(v[0]!), alpha: Math.exp(v[1]!), a: Math.exp(v[2]!), b: Math.exp(v[3]!) });
  // Scaled by the customer count so the stopping tolerances mean the same at any size.
  const objective = (v: number[]) => {
    if (v.some((k) => !(Math.abs(k) <= 30))) return { value: Infinity, grad: v.map(() => 0) };
    const p = toParams(v);
    const { value, grad } = bgnbdValueAndGradient(p, d, true, modified);
    const theta = [p.r, p.alpha, p.a, p.b];
    return { value: -value / customers, grad: grad.map((g, i) => (-g * theta[i]!) / customers) };
  };
  const lnT = Math.log(meanT);
  const best = bfgsFromStarts(
    objective,
    opts.starts ?? [
      [0, 0, 0, 0],
      [Math.log(0.5), lnT - 2, 0, Math.log(2)],
      [Math.log(0.25), lnT - 3, Math.log(0.8), Math.log(2.5)],
    ],
    { maxIter: opts.maxIter },
  );
  // Converged: the best search stopped on its own (flat gradient, or a value that no longer moves, as
  // along a ridge where a parameter runs off) at a finite value, not at its iteration cap.
  const converged = best.converged && best.x.every(Number.isFinite);
  return { params: toParams(best.x), logLikelihood: -best.value * customers, iterations: best.iterations, converged };
}

/**
 * P(alive | x, t_x, T) (equation 11): under BG/NBD a customer with no repeat purchase has not had a
 * chance to drop out; under MBG/NBD they had one, right after their first purchase.
 */
export function pAlive(p: BgNbdParams, x: number, tx: number, T: number, modified = false): number {
  if (x === 0 && !modified) return 1;
  const { r, alpha, a, b } = p;
  const logRatio = Math.log(a) - Math.log(b + x - 1 + (modified ? 1 : 0)) + (r + x) * (Math.log(alpha + T) - Math.log(alpha + tx));
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
export function expectedPurchases(p: BgNbdParams, t: number, x: number, tx: number, T: number, modified = false): number {
  if (t <= 0) return 0;
  const alive = pAlive(p, x, tx, T, modified);
  // Given alive, MBG/NBD's expectation is BG/NBD's with b + 1 (the drop-out posterior is Beta(a, b + x + 1)).
  if (modified) p = { ...p, b: p.b + 1 };
  const { r, alpha, b } = p;
  // At a = 1 the closed form is 0/0; the expectation is continuous in a, so step off the pole.
  const a = Math.abs(p.a - 1) < 1e-8 ? 1 + 1e-8 : p.a;
  const z = t / (alpha + T + t);
  const growth = -Math.log1p(-z);
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

/** P(no purchase in the next t | x, t_x, T): dead, or alive and the Poisson clock stays silent (no purchase, no drop-out chance). */
export function probNoPurchase(p: BgNbdParams, t: number, x: number, tx: number, T: number, modified = false): number {
  const alive = pAlive(p, x, tx, T, modified);
  return 1 - alive + alive * Math.exp(-(p.r + x) * Math.log1p(t / (p.alpha + T)));
}

/** E[X(t)] for a customer just acquired (MBG/NBD: their first purchase at 0 counts as a drop-out chance). */
export function populationExpected(p: BgNbdParams, t: number, modified = false): number {
  const { r, alpha, a, b } = p;
  const z = t / (alpha + t);
  if (!modified) return ((a + b - 1) / (a - 1)) * (1 - Math.pow(alpha / (alpha + t), r) * hyp2f1(r, b, a + b - 1, z));
  return (b / (a - 1)) * (1 - Math.pow(alpha / (alpha + t), r) * hyp2f1(r, b + 1, a + b, z));
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
