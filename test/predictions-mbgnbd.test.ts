import { readFileSync } from 'node:fs';
import { bgnbdLogLikelihood, bgnbdValueAndGradient, expectedPurchases, fitBgNbd, pAlive, populationExpected, probNoPurchase, toTriples, type BgNbdParams } from '../src/predictions/bgnbd';
import { lgamma } from '../src/predictions/math';

const rows = readFileSync(`${__dirname}/fixtures/data/cdnow-summary.csv`, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
const cdnow = () => toTriples(rows.map((r) => r[1]!), rows.map((r) => r[2]!), rows.map((r) => r[3]!));
/** The values lifetimes' tests pin against BTYDplus's mbgcbs.EstimateParameters on this summary. */
const BTYDPLUS = { r: 0.525, alpha: 6.183, a: 0.891, b: 1.614 };

/**
 * The individual-level model integrated numerically over its two hidden quantities (lambda on a
 * log grid, p on a logit grid, midpoint rule), with nothing of the closed forms: the alive and dead
 * parts of the likelihood written from the model's story, then pAlive, E[Y(t)] and P(no purchase).
 */
function byIntegration(p: BgNbdParams, modified: boolean, x: number, tx: number, T: number, t: number, tNone: number) {
  const { r, alpha, a, b } = p;
  const N = 1200;
  const lnPrior = -lgamma(r) + r * Math.log(alpha) + lgamma(a + b) - lgamma(a) - lgamma(b);
  let den = 0;
  let alive = 0;
  let expected = 0;
  let none = 0;
  for (let i = 0; i < N; i++) {
    const u = -150 + ((i + 0.5) * 158) / N; // ln lambda in [-150, 8]: r < 1 leaves real mass at tiny rates
    const lambda = Math.exp(u);
    for (let j = 0; j < N; j++) {
      const v = -35 + ((j + 0.5) * 70) / N; // logit p in [-35, 35]
      const q = 1 / (1 + Math.exp(-v));
      const lq = Math.log(q);
      const l1q = Math.log1p(-q);
      // prior density times the Jacobians (dlambda = lambda du, dp = p (1 - p) dv)
      const lw = lnPrior + r * u - alpha * lambda + a * lq + b * l1q;
      const stays = modified ? x + 1 : x; // drop-out chances survived
      const lAlive = lw + stays * l1q + x * u - lambda * T;
      const wAlive = Math.exp(lAlive);
      const wDead = x > 0 || modified ? Math.exp(lw + lq + (stays - 1) * l1q + x * u - lambda * tx) : 0;
      den += wAlive + wDead;
      alive += wAlive;
      expected += (wAlive * -Math.expm1(-lambda * q * t)) / q;
      none += wDead + wAlive * Math.exp(-lambda * tNone);
    }
  }
  return { pAlive: alive / den, expected: expected / den, none: none / den };
}

describe('MBG/NBD on the CDNOW calibration summary (weeks, as of 1997-09-30)', () => {
  test('when fitted, then r, alpha, a, b are BTYDplus\'s within 1% and the likelihood is at least theirs', () => {
    const d = cdnow();
    const fit = fitBgNbd(d, true);
    expect(fit.converged).toBe(true);
    for (const k of ['r', 'alpha', 'a', 'b'] as const) expect(Math.abs(fit.params[k] / BTYDPLUS[k] - 1)).toBeLessThan(0.01);
    expect(fit.logLikelihood).toBeGreaterThanOrEqual(bgnbdLogLikelihood(BTYDPLUS, d, true) - 1e-6);
    expect(fit.logLikelihood).toBeCloseTo(-9582.13, 1);
  });

  test('when the same data are fitted with bg-nbd, then the published BG/NBD estimates still come back', () => {
    const fit = fitBgNbd(cdnow(), false);
    expect(fit.params.r).toBeCloseTo(0.243, 3);
    expect(fit.params.alpha).toBeCloseTo(4.414, 2);
    expect(fit.params.a).toBeCloseTo(0.793, 3);
    expect(fit.params.b).toBeCloseTo(2.426, 2);
    expect(fit.logLikelihood).toBeCloseTo(-9582.4, 1);
  });

  test('when the analytic MBG/NBD gradient is compared with central differences, then they agree', () => {
    const d = cdnow();
    const p = { r: 0.4, alpha: 5, a: 0.8, b: 1.9 };
    const g = bgnbdValueAndGradient(p, d, true, true).grad;
    (['r', 'alpha', 'a', 'b'] as const).forEach((k, i) => {
      const h = 1e-6 * p[k];
      const numeric = (bgnbdLogLikelihood({ ...p, [k]: p[k] + h }, d, true) - bgnbdLogLikelihood({ ...p, [k]: p[k] - h }, d, true)) / (2 * h);
      expect(Math.abs(g[i]! - numeric)).toBeLessThan(1e-4 * (1 + Math.abs(numeric)));
    });
  });

  test('when the fit is capped at two iterations, then it says it has not converged', () => {
    expect(fitBgNbd(cdnow(), true, { maxIter: 2 }).converged).toBe(false);
  });

  test('when a new customer is forecast, then E[X(t)] matches BTYDplus\'s mbgnbd expectations (5%) and the numeric integral', () => {
    // lifetimes' test_expected_number_of_purchases_up_to_time pins these against BTYDplus, rtol 0.05.
    const times = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0];
    const ref = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576];
    times.forEach((t, i) => expect(Math.abs(populationExpected(BTYDPLUS, t, true) / ref[i]! - 1)).toBeLessThan(0.05));
    // Independently: E[(1 - p) (1 - e^(-lambda p t)) / p] over the priors, the first purchase being a drop-out chance.
    const { r, alpha, a, b } = BTYDPLUS;
    const N = 1500;
    let sum = 0;
    const lnPrior = -lgamma(r) + r * Math.log(alpha) + lgamma(a + b) - lgamma(a) - lgamma(b);
    for (let i = 0; i < N; i++) {
      const u = -150 + ((i + 0.5) * 158) / N;
      const lambda = Math.exp(u);
      for (let j = 0; j < N; j++) {
        const v = -35 + ((j + 0.5) * 70) / N;
        const q = 1 / (1 + Math.exp(-v));
        const w = Math.exp(lnPrior + r * u - alpha * lambda + a * Math.log(q) + b * Math.log1p(-q)) * (158 / N) * (70 / N);
        sum += (w * (1 - q) * -Math.expm1(-lambda * q * 39)) / q;
      }
    }
    expect(populationExpected(BTYDPLUS, 39, true)).toBeCloseTo(sum, 4);
  });

  test.each([
    [true, 0, 0, 38.86],
    [true, 2, 30.43, 38.86],
    [true, 1, 1.71, 38.86],
    [true, 7, 35, 36],
    [false, 0, 0, 38.86],
    [false, 2, 30.43, 38.86],
    [false, 5, 20, 30],
  ])('when modified=%s, x=%d, t_x=%d, T=%d, then pAlive, E[Y(39)] and P(no purchase in 13) match the model integrated numerically', (modified, x, tx, T) => {
    const p = modified ? BTYDPLUS : { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
    const num = byIntegration(p, modified, x, tx, T, 39, 13);
    expect(pAlive(p, x, tx, T, modified)).toBeCloseTo(num.pAlive, 5);
    expect(expectedPurchases(p, 39, x, tx, T, modified)).toBeCloseTo(num.expected, 4);
    expect(probNoPurchase(p, 13, x, tx, T, modified)).toBeCloseTo(num.none, 5);
  });

  test('when an MBG/NBD fit finds almost no drop-out (a and b in the millions), then E[Y] is finite and close to the no-drop-out limit', () => {
    const p = { r: 1.34, alpha: 69.6, a: 6.5e6, b: 8.2e6 };
    for (const [x, tx, T] of [[0, 0, 200], [3, 90, 200]] as const) {
      const q = p.a / (p.a + p.b + x + 1); // the drop-out posterior mean given alive: Beta(a, b + x + 1)
      const limit = (pAlive(p, x, tx, T, true) * (1 - Math.pow((p.alpha + T) / (p.alpha + T + q * 365), p.r + x))) / q;
      expect(expectedPurchases(p, 365, x, tx, T, true)).toBeCloseTo(limit, 5);
    }
  });

  test('when a customer bought once long ago, then MBG/NBD says they may have lapsed while BG/NBD cannot', () => {
    expect(pAlive(BTYDPLUS, 0, 0, 38.86, true)).toBeLessThan(0.7);
    expect(pAlive({ r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 }, 0, 0, 38.86, false)).toBe(1);
  });
});
