/**
 * A/B winner, a pure function for campaign fan-out (helper C calls it when the test phase ends).
 * The rate is clicks or conversions per sent message of the variant's test share. Ties go to the
 * variant with more sends (the better-measured one), then to the first key, so the outcome is
 * deterministic. A variant with nothing sent cannot win while another has sends.
 */
export interface VariantTally {
  variant: string;
  sent: number;
  clicks: number;
  conversions: number;
}

export interface AbDecision {
  winner: string | null;
  results: Array<VariantTally & { rate: number }>;
}

export function decideWinner(tallies: VariantTally[], metric: 'clicks' | 'conversions'): AbDecision {
  const results = tallies.map((t) => ({ ...t, rate: t.sent > 0 ? (metric === 'clicks' ? t.clicks : t.conversions) / t.sent : 0 }));
  const ranked = [...results].sort((a, b) => b.rate - a.rate || b.sent - a.sent || a.variant.localeCompare(b.variant));
  const best = ranked[0];
  return { winner: best && (best.sent > 0 || results.every((r) => r.sent === 0)) ? best.variant : null, results };
}
