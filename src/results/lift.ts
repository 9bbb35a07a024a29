/**
 * Treatment vs holdout: the lift of the conversion rate, with a 95% confidence interval.
 *
 * With treatment conversions x1 of n1 customers and holdout conversions x2 of n2:
 *   p1 = x1 / n1, p2 = x2 / n2
 *   lift (absolute)  d = p1 - p2
 *   lift (relative)  r = d / p2                       (null when p2 = 0)
 *   standard error   se = sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2)    (unpooled: the CI is
 *                    for the difference, not a test of "no difference")
 *   95% interval     d - z se .. d + z se, z = 1.959964 (the 97.5th normal percentile)
 * This is the Wald two-proportion interval. It is poor when a group is tiny or a rate is 0 or 1
 * (se collapses to 0); we still report it there, as the formula gives it, and the report shows
 * the group sizes next to it so a reader can judge.
 */
export const Z95 = 1.959963984540054;

export interface Lift {
  conversionRate: number | null;
  relative: number | null;
  ci95: [number, number] | null;
}

export function liftOf(x1: number, n1: number, x2: number, n2: number): Lift {
  if (n1 <= 0 || n2 <= 0) return { conversionRate: null, relative: null, ci95: null };
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const d = p1 - p2;
  const se = Math.sqrt((p1 * (1 - p1)) / n1 + (p2 * (1 - p2)) / n2);
  return {
    conversionRate: d,
    relative: p2 > 0 ? d / p2 : null,
    ci95: [d - Z95 * se, d + Z95 * se],
  };
}

export const rate = (x: number, n: number): number | null => (n > 0 ? x / n : null);
