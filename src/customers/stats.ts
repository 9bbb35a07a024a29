import { toMoney } from '../db';

/** The customer_stats columns read for the API's `stats` object, derived values computed in SQL. */
export const statsColumns = `
  s.purchase_count, s.total_spent, s.first_purchase_at, s.last_purchase_at, s.purchases_90d, s.spent_90d,
  s.top_category, s.avg_gap_days, s.p_alive, s.churn_risk, s.expected_purchases_90d, s.predicted_spend_365d, s.lead_score`;

export interface StatsRow {
  purchase_count: number;
  total_spent: string;
  first_purchase_at: Date | null;
  last_purchase_at: Date | null;
  purchases_90d: number;
  spent_90d: string;
  top_category: string | null;
  avg_gap_days: number | null;
  [extra: string]: unknown;
}

const DAY = 86400000;

const numOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** Forecasts (null until a fit has scored the customer) and the lead score. */
const predictionsView = (s: StatsRow) => ({
  pAlive: numOrNull(s.p_alive),
  churnRisk: numOrNull(s.churn_risk),
  expectedPurchases90d: numOrNull(s.expected_purchases_90d),
  predictedSpend365d: toMoney(s.predicted_spend_365d as string | null | undefined),
  leadScore: Number(s.lead_score ?? 0),
});

export function statsView(s: StatsRow, now: Date) {
  const count = Number(s.purchase_count ?? 0);
  const total = toMoney(s.total_spent) ?? 0;
  const last = s.last_purchase_at ? new Date(s.last_purchase_at) : null;
  const gap = s.avg_gap_days === null || s.avg_gap_days === undefined ? null : Number(s.avg_gap_days);
  return {
    purchaseCount: count,
    totalSpent: total,
    avgOrderValue: count > 0 ? Math.round((total / count) * 100) / 100 : null,
    firstPurchaseAt: s.first_purchase_at ? new Date(s.first_purchase_at).toISOString() : null,
    lastPurchaseAt: last ? last.toISOString() : null,
    daysSinceLastPurchase: last ? Math.floor((now.getTime() - last.getTime()) / DAY) : null,
    avgDaysBetweenPurchases: gap === null ? null : Math.round(gap * 10) / 10,
    expectedNextPurchaseAt: last && gap !== null ? new Date(last.getTime() + gap * DAY).toISOString() : null,
    purchases90d: Number(s.purchases_90d ?? 0),
    spent90d: toMoney(s.spent_90d) ?? 0,
    topCategory: s.top_category ?? null,
    ...predictionsView(s),
  };
}
