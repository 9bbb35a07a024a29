const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A history where recency meant the opposite in the training window: in the 90 days after A-180
 * the customers who had bought recently stopped and the long-quiet ones came back; in the 90 days
 * after A-90 the recent buyers (the ones who came back) bought again. A model learned one step back
 * ranks worse than plain recency on the last 90 days, and must be flagged.
 */
export function invertedHistory(A: number) {
  const purchases: object[] = [];
  for (let c = 0; c < 400; c++) {
    const j = c % 20;
    const recentAt180 = c % 2 === 0;
    const days = recentAt180 ? [350 + j, 185 + j / 4] : [350 + j, 300 + j, 120 - j, 30 - j];
    days.forEach((d, k) => purchases.push({ orderId: `inv-${c}-${k}`, customer: { externalId: `i${c}` }, occurredAt: iso(A - d * DAY), total: 20 + j }));
  }
  return purchases;
}

