import { readFileSync } from 'node:fs';
import { bgnbdLogLikelihood, bgnbdValueAndGradient, expectedByQuadrature, expectedPurchases, fitBgNbd, pAlive, toTriples } from '../src/predictions/bgnbd';
import { conditionalSpend, fitGammaGamma, gammaGammaValueAndGradient, populationSpend } from '../src/predictions/gammagamma';
import { bfgs, digamma, hyp2f1, lgamma, logAddExp } from '../src/predictions/math';

const PAPER = { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };

/** Γ by the plain product for small arguments: an independent check of the Lanczos log-gamma. */
function gammaByRecurrence(x: number): number {
  // Γ(x) = Γ(x + n) / (x (x+1) ... (x+n-1)), with Stirling's series at x + n large.
  let prod = 1;
  let z = x;
  while (z < 30) prod *= z++;
  const stirling = Math.sqrt((2 * Math.PI) / z) * Math.pow(z / Math.E, z) * (1 + 1 / (12 * z) + 1 / (288 * z ** 2) - 139 / (51840 * z ** 3) - 571 / (2488320 * z ** 4));
  return stirling / prod;
}

/** The paper's equation 10, term by term: the hypergeometric series in its original form. */
function expectedByHand(p: typeof PAPER, t: number, x: number, tx: number, T: number): number {
  const { r, alpha, a, b } = p;
  const z = t / (alpha + T + t);
  let term = 1;
  let f = 1;
  for (let n = 0; n < 100000; n++) {
    term *= ((r + x + n) * (b + x + n) * z) / ((a + b + x - 1 + n) * (n + 1));
    f += term;
    if (term < 1e-16 * f) break;
  }
  const num = ((a + b + x - 1) / (a - 1)) * (1 - Math.pow((alpha + T) / (alpha + T + t), r + x) * f);
  const den = 1 + (x > 0 ? (a / (b + x - 1)) * Math.pow((alpha + T) / (alpha + tx), r + x) : 0);
  return num / den;
}

describe('numerical building blocks', () => {
  test('when log-gamma is taken at known points, then it matches the closed forms and the recurrence', () => {
    expect(lgamma(0.5)).toBeCloseTo(Math.log(Math.sqrt(Math.PI)), 12);
    expect(lgamma(1)).toBeCloseTo(0, 12);
    expect(lgamma(10)).toBeCloseTo(Math.log(362880), 10);
    expect(lgamma(171.5)).toBeCloseTo(lgamma(170.5) + Math.log(170.5), 8);
    for (const x of [0.01, 0.243, 0.793, 2.426, 7.3]) expect(lgamma(x)).toBeCloseTo(Math.log(gammaByRecurrence(x)), 9);
  });

  test('when log-sum-exp adds huge or empty terms, then it neither overflows nor loses the larger one', () => {
    expect(logAddExp(1000, 1000)).toBeCloseTo(1000 + Math.log(2), 12);
    expect(logAddExp(-Infinity, -3)).toBe(-3);
    expect(logAddExp(-800, -801)).toBeCloseTo(-800 + Math.log1p(Math.exp(-1)), 12);
  });

  test('when 2F1 has a closed form, then the series reproduces it', () => {
    for (const z of [0.1, 0.5, 0.9, 0.99]) expect(hyp2f1(1, 1, 2, z)).toBeCloseTo(-Math.log(1 - z) / z, 10);
    // 2F1(a, b; b; z) = (1 - z)^-a
    expect(hyp2f1(0.7, 3.2, 3.2, 0.6)).toBeCloseTo(Math.pow(0.4, -0.7), 10);
  });

  test('when digamma is taken at known points, then it matches the closed forms and the derivative of log-gamma', () => {
    expect(digamma(1)).toBeCloseTo(-0.5772156649015329, 12);
    expect(digamma(0.5)).toBeCloseTo(-0.5772156649015329 - 2 * Math.log(2), 12);
    for (const x of [1e-3, 0.243, 2.426, 37.5, 1e6]) {
      const h = 1e-5 * x;
      expect(digamma(x)).toBeCloseTo((lgamma(x + h) - lgamma(x - h)) / (2 * h), x < 1 ? 3 : 5);
    }
  });

  test('when BFGS minimises the Rosenbrock valley, then it finds (1, 1)', () => {
    const f = (v: number[]) => ({
      value: 100 * (v[1]! - v[0]! ** 2) ** 2 + (1 - v[0]!) ** 2,
      grad: [-400 * v[0]! * (v[1]! - v[0]! ** 2) - 2 * (1 - v[0]!), 200 * (v[1]! - v[0]! ** 2)],
    });
    const r = bfgs(f, [-1.2, 1], { maxIter: 500 });
    expect(r.x[0]).toBeCloseTo(1, 5);
    expect(r.x[1]).toBeCloseTo(1, 5);
  });
});

describe('BG/NBD and Gamma-Gamma on the CDNOW calibration summary', () => {
  const rows = readFileSync(`${__dirname}/fixtures/data/cdnow-summary.csv`, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));

  test('when fitted on the published summary, then the published estimates and log-likelihood come back', () => {
    const d = toTriples(rows.map((r) => r[1]!), rows.map((r) => r[2]!), rows.map((r) => r[3]!));
    expect(d.n.reduce((s, n) => s + n, 0)).toBe(2357);
    const fit = fitBgNbd(d);
    expect(fit.params.r).toBeCloseTo(0.243, 3);
    expect(fit.params.alpha).toBeCloseTo(4.414, 2);
    expect(fit.params.a).toBeCloseTo(0.793, 3);
    expect(fit.params.b).toBeCloseTo(2.426, 2);
    expect(fit.logLikelihood).toBeCloseTo(-9582.4, 1); // as reported in the paper
    expect(fit.logLikelihood).toBeGreaterThanOrEqual(bgnbdLogLikelihood(PAPER, d));
  });

  test('when the spend model is fitted on the 946 repeat customers, then p, q, gamma match the paper', () => {
    const s = rows.filter((r) => r[1]! > 0);
    expect(s).toHaveLength(946);
    const fit = fitGammaGamma({ x: Float64Array.from(s.map((r) => r[1]!)), zbar: Float64Array.from(s.map((r) => r[4]!)) });
    expect(Math.abs(fit.params.p / 6.25 - 1)).toBeLessThan(0.02);
    expect(Math.abs(fit.params.q / 3.74 - 1)).toBeLessThan(0.02);
    expect(Math.abs(fit.params.gamma / 15.44 - 1)).toBeLessThan(0.02);
  });

  test('when the analytic gradients are compared with central differences, then they agree', () => {
    const d = toTriples(rows.map((r) => r[1]!), rows.map((r) => r[2]!), rows.map((r) => r[3]!));
    const p = { r: 0.3, alpha: 5, a: 0.7, b: 2 };
    const g = bgnbdValueAndGradient(p, d).grad;
    (['r', 'alpha', 'a', 'b'] as const).forEach((k, i) => {
      const h = 1e-6 * p[k];
      const numeric = (bgnbdLogLikelihood({ ...p, [k]: p[k] + h }, d) - bgnbdLogLikelihood({ ...p, [k]: p[k] - h }, d)) / (2 * h);
      expect(Math.abs(g[i]! - numeric)).toBeLessThan(1e-4 * (1 + Math.abs(numeric)));
    });
    const s = rows.filter((r) => r[1]! > 0);
    const sp = { x: Float64Array.from(s.map((r) => r[1]!)), zbar: Float64Array.from(s.map((r) => r[4]!)) };
    const q = { p: 5, q: 3, gamma: 12 };
    const gg = gammaGammaValueAndGradient(q, sp).grad;
    (['p', 'q', 'gamma'] as const).forEach((k, i) => {
      const h = 1e-6 * q[k];
      const numeric = (gammaGammaValueAndGradient({ ...q, [k]: q[k] + h }, sp).value - gammaGammaValueAndGradient({ ...q, [k]: q[k] - h }, sp).value) / (2 * h);
      expect(Math.abs(gg[i]! - numeric)).toBeLessThan(1e-4 * (1 + Math.abs(numeric)));
    });
  });
});

describe('per-customer expectations against the formulas worked by hand', () => {
  test('when a customer has made a single purchase, then P(alive) is 1 and E[Y(t)] is the x = 0 expression', () => {
    expect(pAlive(PAPER, 0, 0, 38.86)).toBe(1);
    const byHand = expectedByHand(PAPER, 39, 0, 0, 38.86);
    expect(expectedPurchases(PAPER, 39, 0, 0, 38.86)).toBeCloseTo(byHand, 10);
    expect(byHand).toBeGreaterThan(0);
  });

  test.each([
    [2, 30.43, 38.86],
    [1, 1.71, 38.86],
    [5, 20.0, 30.0],
    [7, 35.0, 36.0],
    [3, 2.0, 38.0],
  ])('when x=%d, t_x=%d, T=%d, then P(alive) and E[Y(39)] match equations 10 and 11', (x, tx, T) => {
    const { r, alpha, a, b } = PAPER;
    const aliveByHand = 1 / (1 + (a / (b + x - 1)) * Math.pow((alpha + T) / (alpha + tx), r + x));
    expect(pAlive(PAPER, x, tx, T)).toBeCloseTo(aliveByHand, 12);
    expect(expectedPurchases(PAPER, 39, x, tx, T)).toBeCloseTo(expectedByHand(PAPER, 39, x, tx, T), 9);
  });

  test('when the paper\'s example customer (x=2, t_x=30.43, T=38.86) looks 39 weeks ahead, then 1.226 purchases are expected', () => {
    expect(expectedPurchases(PAPER, 39, 2, 30.43, 38.86)).toBeCloseTo(1.226, 3);
  });

  test('when a heavy buyer went quiet long ago, then P(alive) is small but E[Y] stays finite and non-negative', () => {
    const p = pAlive(PAPER, 400, 10, 380);
    expect(p).toBeLessThan(1e-6);
    const e = expectedPurchases(PAPER, 90, 400, 10, 380);
    expect(Number.isFinite(e)).toBe(true);
    expect(e).toBeGreaterThanOrEqual(0);
  });

  test('when the drop-out integral is taken by quadrature, then it equals the series where both apply', () => {
    const p = { r: 0.5, alpha: 10, a: 300, b: 900 };
    for (const [x, tx, T] of [[0, 0, 30], [3, 20, 30], [10, 25, 40]] as const) {
      expect(pAlive(p, x, tx, T) * expectedByQuadrature(p, 39, x, T)).toBeCloseTo(expectedByHand(p, 39, x, tx, T), 10);
    }
  });

  test('when a fit finds almost no drop-out (a and b in the millions), then E[Y] is finite, fast and close to the no-drop-out limit', () => {
    const p = { r: 1.34, alpha: 69.6, a: 6.5e6, b: 8.2e6 };
    const started = Date.now();
    for (let i = 0; i < 2000; i++) expect(Number.isFinite(expectedPurchases(p, 365, 3, 90, 200 + i / 7))).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    // With drop-out q fixed at a/(a+b), E = pAlive (1 - ((alpha+T)/(alpha+T+qt))^(r+x)) / q.
    const q = p.a / (p.a + p.b);
    const limit = (pAlive(p, 3, 90, 200) * (1 - Math.pow((p.alpha + 200) / (p.alpha + 200 + q * 365), p.r + 3))) / q;
    expect(expectedPurchases(p, 365, 3, 90, 200)).toBeCloseTo(limit, 6);
  });

  test('when spend is conditioned on a history, then it is the weighted mean of the formula', () => {
    const g = { p: 6.25, q: 3.74, gamma: 15.44 };
    expect(populationSpend(g)).toBeCloseTo((6.25 * 15.44) / 2.74, 10);
    expect(conditionalSpend(g, 2, 22.35)).toBeCloseTo((6.25 * (15.44 + 2 * 22.35)) / (6.25 * 2 + 3.74 - 1), 10);
    expect(conditionalSpend(g, 0, 0)).toBeCloseTo(populationSpend(g), 10);
  });
});
