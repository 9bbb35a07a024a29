import { lgamma, minimizeWithRestarts } from './math';

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

/** log f(zbar | x) summed over customers: Gamma(px+q)/(Gamma(px)Gamma(q)) gamma^q zbar^(px-1) x^px / (gamma + x zbar)^(px+q). */
export function gammaGammaLogLikelihood(par: GammaGammaParams, d: Spenders): number {
  const { p, q, gamma } = par;
  const head = q * Math.log(gamma) - lgamma(q);
  const byX = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < d.x.length; i++) {
    const x = d.x[i]!;
    const z = d.zbar[i]!;
    let gx = byX.get(x);
    if (gx === undefined) {
      gx = head + lgamma(p * x + q) - lgamma(p * x) + p * x * Math.log(x);
      byX.set(x, gx);
    }
    total += gx + (p * x - 1) * Math.log(z) - (p * x + q) * Math.log(gamma + x * z);
  }
  return total;
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
    if (v.some((k) => Math.abs(k) > 30)) return Infinity;
    return -gammaGammaLogLikelihood(toParams(v), d) / n;
  };
  // Starts around E[Z] = p gamma / (q - 1) = mean, the scale set by the data.
  const lnMean = Math.log(mean);
  const best = minimizeWithRestarts(objective, [
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
