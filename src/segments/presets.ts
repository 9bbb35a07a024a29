import type { PresetName, SegmentNode } from './schema';

/**
 * Presets are written in the rule language itself, so that a marketer can read one in
 * GET /v1/segments/presets, copy it and adjust it. "Within N days" counts whole days elapsed,
 * like daysSinceLastPurchase: a purchase 30 days and 5 hours ago is within 30 days.
 */
export const PRESETS: Record<PresetName, { description: string; definition: SegmentNode }> = {
  new: {
    description: 'First purchase within the last 30 days',
    definition: { field: 'daysSinceFirstPurchase', op: 'lte', value: 30 },
  },
  returning: {
    description: 'Two or more purchases',
    definition: { field: 'purchaseCount', op: 'gte', value: 2 },
  },
  active: {
    description: 'Purchased within the last 30 days',
    definition: { field: 'daysSinceLastPurchase', op: 'lte', value: 30 },
  },
  atRisk: {
    description: 'Last purchase 31 to 90 days ago',
    definition: { field: 'daysSinceLastPurchase', op: 'between', value: [31, 90] },
  },
  lapsed: {
    description: 'Last purchase more than 180 days ago',
    definition: { field: 'daysSinceLastPurchase', op: 'gt', value: 180 },
  },
  vip: {
    description: 'Top 10% of buyers by total spent',
    definition: { field: 'totalSpent', op: 'topPercent', value: 10 },
  },
  fading: {
    description: "At least 3 purchases and overdue: days since the last purchase above twice the customer's own average gap, and at least 30",
    definition: {
      all: [
        { field: 'purchaseCount', op: 'gte', value: 3 },
        { field: 'daysSinceLastPurchase', op: 'gt', value: { field: 'avgDaysBetweenPurchases', times: 2 } },
        { field: 'daysSinceLastPurchase', op: 'gte', value: 30 },
      ],
    },
  },
  likelyToChurn: {
    description: 'Returning customers (2+ purchases) whose predicted churn risk is above 0.5',
    definition: { all: [{ preset: 'returning' }, { field: 'churnRisk', op: 'gt', value: 0.5 }] },
  },
};

export function presetList() {
  return Object.entries(PRESETS).map(([name, p]) => ({ name, description: p.description, definition: p.definition }));
}
