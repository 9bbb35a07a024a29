import type { Db } from '../db';
import { toMoney } from '../db';
import { liftOf, rate } from './lift';
import { AGE_BANDS, aggregate, ALL, GroupRow, Owner, segmentNames } from './repo';
import type { GroupBy } from './schema';
import { feedCaughtUpAt } from '../feed';
import { ATTRIBUTION_CONSUMER } from './attribution';

export interface GroupSummary {
  customers: number;
  converted: number;
  conversionRate: number | null;
  revenue: number;
  revenuePerCustomer: number | null;
}

const summary = (customers: number, converted: number, revenue: number): GroupSummary => ({
  customers,
  converted,
  conversionRate: rate(converted, customers),
  revenue: toMoney(revenue)!,
  revenuePerCustomer: customers > 0 ? toMoney(revenue / customers) : null,
});

function sumRows(rows: GroupRow[]): GroupRow {
  const t: GroupRow = { grp: 'all', targeted: 0, eligible: 0, sent: 0, delivered: 0, opened: 0, clicked: 0, converted: 0, revenue: '0', held_out: 0, held_out_converted: 0, held_out_revenue: '0' };
  for (const r of rows) {
    for (const k of ['targeted', 'eligible', 'sent', 'delivered', 'opened', 'clicked', 'converted', 'held_out', 'held_out_converted'] as const) t[k] += r[k];
    t.revenue = String(Number(t.revenue) + Number(r.revenue));
    t.held_out_revenue = String(Number(t.held_out_revenue) + Number(r.held_out_revenue));
  }
  return t;
}

function order(groupBy: GroupBy, a: string, b: string): number {
  if (groupBy === 'ageBand') return (AGE_BANDS as readonly string[]).indexOf(a) - (AGE_BANDS as readonly string[]).indexOf(b) || a.localeCompare(b);
  if (groupBy === 'step') return (Number(a) || 0) - (Number(b) || 0);
  return a === 'unknown' ? 1 : b === 'unknown' ? -1 : a.localeCompare(b);
}

/**
 * A campaign's or automation's report. Groups other than segment partition the rows, so their
 * totals are the sum of the groups; a message counts in each of its segments, so for segment
 * the totals come as an extra ALL group of the same query.
 * holdout: 'always' shows it even empty (campaigns); 'ifPresent' gives null without held-out rows.
 * attributedThrough: how fresh the conversions are (the attribution feed's caught-up time, src/feed.ts).
 */
export async function buildReport(db: Db, workspaceId: string, owner: Owner, groupBy: GroupBy, holdoutMode: 'always' | 'ifPresent') {
  // Freshness first: the conversions it vouches for committed with it, so the aggregate's later
  // snapshot holds them (read the other way round, it could claim conversions the figures lack).
  const through = await feedCaughtUpAt(db, ATTRIBUTION_CONSUMER);
  const all = await aggregate(db, owner, groupBy);
  const rows = all.filter((r) => r.grp !== ALL);
  const totals = all.find((r) => r.grp === ALL) ?? sumRows(rows);
  const names = groupBy === 'segment' ? await segmentNames(db, workspaceId, rows.map((r) => r.grp)) : new Map<string, string>();
  const treatment = summary(totals.eligible, totals.converted, Number(totals.revenue));
  const holdout = summary(totals.held_out, totals.held_out_converted, Number(totals.held_out_revenue));
  const lift = liftOf(totals.converted, totals.eligible, totals.held_out_converted, totals.held_out);
  return {
    groupBy,
    rows: rows
      // Held-out rows have no variant: under variant they would form a group with no treatment.
      .filter((r) => groupBy !== 'variant' || r.targeted > 0)
      .sort((a, b) => order(groupBy, a.grp, b.grp))
      .map((r) => ({
        group: r.grp,
        ...(names.has(r.grp) ? { name: names.get(r.grp) } : {}),
        targeted: r.targeted,
        sent: r.sent,
        delivered: r.delivered,
        opened: r.opened,
        clicked: r.clicked,
        converted: r.converted,
        revenue: toMoney(r.revenue)!,
        // Additive: the denominator of conversionRate, and the group's own held-out customers.
        eligible: r.eligible,
        conversionRate: rate(r.converted, r.eligible),
        heldOut: r.held_out,
        heldOutConverted: r.held_out_converted,
      })),
    treatment,
    holdout: holdoutMode === 'ifPresent' && totals.held_out === 0 ? null : holdout,
    lift: { ...lift, method: 'two-proportion Wald interval (unpooled), treatment minus holdout conversion rate' },
    // Additive: every purchase recorded before this time is attributed in the figures above
    // (null until attribution first caught up).
    attributedThrough: through?.toISOString() ?? null,
  };
}
