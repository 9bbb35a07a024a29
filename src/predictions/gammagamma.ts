import { bfgsFromStarts, digamma, lgamma } from './math';

/**
 * The Gamma-Gamma model of spend per transaction (Fader and Hardie 2013): a customer's
 * transaction values are Gamma(p, nu) around their own mean, with nu ~ Gamma(q, gamma) across
 * customers. Fitted on customers with repeat purchases and their mean repeat value zbar.
 */
export interface GammaGammaParams {
  p: number;
  q: number;
  gamma: number;
}

export interface Spenders {
  x: Float64Array; // repeat transactions, >= 1
  zbar: Float64Array; // mean repeat transaction value, > 0
}

/** The per-x counts and the sums that do not depend on the parameters, computed once per data set. */
interface Prepared {
  xs: Float64Array;
  nX: Float64Array;
  sumXLogZ: number;
  sumLogZ: number;
}

const preparedCache = new WeakMap<Spenders, Prepared>();

function prepare(d: Spenders): Prepared {
  let c = preparedCache.get(d);
  if (c) return c;
  const counts = new Map<number, number>();
  let sumXLogZ = 0;
  let sumLogZ = 0;
  for (let i = 0; i < d.x.length; i++) {
    const x = d.x[i]!;
    counts.set(x, (counts.get(x) ?? 0) + 1);
    const lz = Math.log(d.zbar[i]!);
    sumXLogZ += x * lz;
    sumLogZ += lz;
  }
  c = { xs: Float64Array.from(counts.keys()), nX: Float64Array.from(counts.values()), sumXLogZ, sumLogZ };
  preparedCache.set(d, c);
  return c;
}

/**
 * log f(zbar | x) summed over customers, Gamma(px+q)/(Gamma(px)Gamma(q)) gamma^q zbar^(px-1) x^px /
 * (gamma + x zbar)^(px+q), and its gradient in (p, q, gamma). Only ln(gamma + x zbar) needs a pass
 * over the customers; everything else is per distinct x or a constant sum.
 */
export function gammaGammaValueAndGradient(par: GammaGammaParams, d: Spenders, withGradient = true): { value: number; grad: number[] } {
  const { p, q, gamma } = par;
  const c = prepare(d);
  let sumW = 0; // sum (px+q) ln(gamma + x z)
  let sumXL = 0; // sum x ln(gamma + x z)
  let sumL = 0; // sum ln(gamma + x z)
  let sumInv = 0; // sum (px+q) / (gamma + x z)
  for (let i = 0; i < d.x.length; i++) {
    const x = d.x[i]!;
    const u = gamma + x * d.zbar[i]!;
    const l = Math.log(u);
    const px = p * x + q;
    sumW += px * l;
    if (withGradient) {
      sumXL += x * l;
      sumL += l;
      sumInv += px / u;
    }
  }
  const lnGamma = Math.log(gamma);
  let total = p * c.sumXLogZ - c.sumLogZ - sumW;
  let gp = c.sumXLogZ - sumXL;
  let gq = -sumL;
  let gg = -sumInv;
  const psiQ = withGradient ? digamma(q) : 0;
  for (let k = 0; k < c.xs.length; k++) {
    const x = c.xs[k]!;
    const m = c.nX[k]!;
    total += m * (q * lnGamma - lgamma(q) + lgamma(p * x + q) - lgamma(p * x) + p * x * Math.log(x));
    if (!withGradient) continue;
    const psiPXQ = digamma(p * x + q);
    gp += m * x * (psiPXQ - digamma(p * x) + Math.log(x));
    gq += m * (psiPXQ - psiQ + lnGamma);
    gg += (m * q) / gamma;
  }
  return { value: total, grad: [gp, gq, gg] };
}

export function gammaGammaLogLikelihood(par: GammaGammaParams, d: Spenders): number {
  return gammaGammaValueAndGradient(par, d, false).value;
}

export interface GammaGammaFit {
  params: GammaGammaParams;
  logLikelihood: number;
}

export function fitGammaGamma(d: Spenders): GammaGammaFit {
  const n = d.x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += d.zbar[i]!;
  mean = Math.max(mean / n, 1e-6);
  const toParams = (v: number[]): GammaGammaParams => ({ p: Math.exp(v[0]!), q: Math.exp(v[1]!), gamma: Math.exp(v[2]!) });
  const objective = (v: number[]) => {
    if (v.some((k) => !(Math.abs(k) <= 30))) return { value: Infinity, grad: v.map(() => 0) };
    const par = toParams(v);
    const { value, grad } = gammaGammaValueAndGradient(par, d);
    const theta = [par.p, par.q, par.gamma];
    return { value: -value / n, grad: grad.map((g, i) => (-g * theta[i]!) / n) };
  };
  // Starts around E[Z] = p gamma / (q - 1) = mean, the scale set by the data.
  const lnMean = Math.log(mean);
  const best = bfgsFromStarts(objective, [
    [0, 0, lnMean],
    [Math.log(5), Math.log(3), lnMean + Math.log(2 / 5)],
    [Math.log(2), Math.log(5), lnMean + Math.log(2)],
  ]);
  return { params: toParams(best.x), logLikelihood: -best.value * n };
}

/** E[Z | zbar, x]: a weighted mean of the population mean and the customer's own mean. */
export function conditionalSpend(par: GammaGammaParams, x: number, zbar: number): number {
  if (x <= 0 || !(zbar > 0)) return populationSpend(par);
  const { p, q, gamma } = par;
  return (p * (gamma + x * zbar)) / (p * x + q - 1);
}

/** E[Z] = p gamma / (q - 1), defined for q > 1; a fit with q <= 1 has no finite mean. */
export function populationSpend(par: GammaGammaParams): number {
  return par.q > 1 ? (par.p * par.gamma) / (par.q - 1) : NaN;
}
