import { createHash } from 'node:crypto';
import type { Variant } from '../../src/campaigns/schema';

/**
 * The campaign assignment rules in plain JavaScript, which the fan-out computes in SQL
 * (src/campaigns/fanout-sql.ts) and the tests hold it to.
 */

/** A uniform number in [0, 1) from (campaign, customer, salt): the same customer always lands alike. */
export function bucket(campaignId: string, customerId: string, salt: string): number {
  const h = createHash('sha256').update(`${campaignId}:${customerId}:${salt}`).digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

/** The variant whose share of [0, 1), by weight in order, holds u. */
export function pickVariant(variants: Variant[], u: number): Variant | undefined {
  const total = variants.reduce((a, v) => a + v.weight, 0);
  let acc = 0;
  for (const v of variants) {
    acc += v.weight / total;
    if (u < acc) return v;
  }
  return variants[variants.length - 1];
}
