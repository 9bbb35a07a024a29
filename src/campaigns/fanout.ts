import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from '../db';
import { ageAt, ageBandOf } from '../results/snapshot';
import { evaluatedTree, matchingCustomerIds, segmentsAudienceQuery } from '../segments/service';
import { getWorkspace } from '../workspaces/repo';
import { insertFanoutRows, PlannedRow } from './fanout-sql';
import type { CampaignRow } from './repo';
import type { Variant } from './schema';

export const FANOUT_BATCH = 5000;

/** A uniform number in [0, 1) from (campaign, customer, salt): the same customer always lands alike. */
export function bucket(campaignId: string, customerId: string, salt: string): number {
  const h = createHash('sha256').update(`${campaignId}:${customerId}:${salt}`).digest();
  return h.readUInt32BE(0) / 2 ** 32;
}

export function pickVariant(variants: Variant[], u: number): Variant | undefined {
  const total = variants.reduce((a, v) => a + v.weight, 0);
  let acc = 0;
  for (const v of variants) {
    acc += v.weight / total;
    if (u < acc) return v;
  }
  return variants[variants.length - 1];
}

interface BatchCustomer {
  id: string;
  birth_date: string | Date | null;
  gender: string | null;
  city: string | null;
  timezone: string | null;
}

/** Rows not yet assigned a variant wait for the A/B winner with send_after 'infinity'. */
export const AWAITING_WINNER = 'infinity';

/**
 * One fan-out batch in one transaction: the next FANOUT_BATCH audience customers after the
 * checkpoint become outbox rows (skipped ones with their reason), and the checkpoint moves to
 * the last of them in the same commit. Returns the ids of rows due now, and whether it was the
 * last batch. A concurrent fan-out of the same campaign waits on the row lock, then sees the new
 * checkpoint, so no customer is written twice (the unique keys would refuse it anyway).
 */
export async function fanoutBatch(db: Db, campaignId: string, now: Date): Promise<{ due: string[]; done: boolean; inserted: number } | null> {
  return db.transaction(async (trx) => {
    const c = (await trx('campaigns').where({ id: campaignId }).forUpdate().first()) as CampaignRow | undefined;
    if (!c || c.status !== 'sending' || c.fanned_out_at) return null;
    const workspace = await getWorkspace(trx as unknown as Db, c.workspace_id);
    const { query } = await segmentsAudienceQuery(trx, c.workspace_id, c.segment_ids, c.exclude_segment_ids, now);
    // The cursor is applied inside the audience too (Postgres pushes it into the segment query), so
    // each batch reads from the checkpoint instead of scanning the audience from its start.
    const audience = trx.select('a.customer_id').from(query.as('a'));
    if (c.fanout_cursor !== null) audience.where('a.customer_id', '>', c.fanout_cursor);
    const q = trx('customers as cu')
      .where('cu.workspace_id', c.workspace_id)
      .whereIn('cu.id', audience)
      .orderBy('cu.id')
      .limit(FANOUT_BATCH)
      .select('cu.id', 'cu.birth_date', 'cu.gender', 'cu.city', 'cu.timezone');
    if (c.fanout_cursor !== null) q.andWhere('cu.id', '>', c.fanout_cursor);
    const customers = ((await q) as BatchCustomer[]).map((r) => ({ ...r, id: String(r.id) }));
    const done = customers.length < FANOUT_BATCH;
    const planned = customers.length ? await planRows(trx, c, customers, now) : [];
    // The rules, dedup and holdout are applied set-based in one statement (fanout-sql.ts).
    const inserted = await insertFanoutRows(trx, c, workspace.settings, planned, now);
    const due = inserted.filter((r) => r.status === 'queued' && r.send_after === null).map((r) => r.id);
    const set: Record<string, unknown> = { updated_at: now };
    if (customers.length) set.fanout_cursor = customers[customers.length - 1]!.id;
    if (done) {
      set.fanned_out_at = now;
      if (c.ab_test) {
        const decideAt = new Date(now.getTime() + c.ab_test.decideAfterHours * 3600_000);
        set.ab_test = JSON.stringify({ ...c.ab_test, phase: 'testing', decideAt: decideAt.toISOString() });
      }
    }
    await trx('campaigns').where({ id: c.id }).update(set);
    return { due, done, inserted: customers.length };
  });
}

/** The per-customer parts decided in JS: snapshot and the deterministic hash buckets. */
async function planRows(trx: Knex.Transaction, c: CampaignRow, customers: BatchCustomer[], now: Date): Promise<PlannedRow[]> {
  const membership = await segmentMembership(trx, c, customers.map((x) => x.id), now);
  const ab = c.ab_test;
  return customers.map((cu) => {
    const snapshot = { segmentIds: membership.get(cu.id) ?? c.segment_ids, ageBand: ageBandOf(ageAt(cu.birth_date, now)), city: cu.city, gender: cu.gender };
    const row: PlannedRow = { id: cu.id, timezone: cu.timezone, snapshot: JSON.stringify(snapshot), heldOut: false, variant: null, templateId: null, awaitingWinner: false };
    if (c.holdout_percent > 0) row.heldOut = bucket(c.id, cu.id, 'holdout') * 100 < c.holdout_percent;
    if (c.variants.length) {
      // Not in the A/B test share: the row waits for the winner (template and variant set then).
      if (ab && bucket(c.id, cu.id, 'abtest') * 100 >= ab.testPercent) row.awaitingWinner = true;
      else {
        const picked = pickVariant(c.variants, bucket(c.id, cu.id, 'variant'))!;
        Object.assign(row, { variant: picked.key, templateId: picked.templateId });
      }
    }
    return row;
  });
}

/** Which of the campaign's segments each customer is in (for reports by segment). */
async function segmentMembership(trx: Knex.Transaction, c: CampaignRow, ids: string[], now: Date): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (c.segment_ids.length < 2) return out;
  const segs = await trx('segments').where({ workspace_id: c.workspace_id }).whereIn('id', c.segment_ids).select('id', 'kind', 'definition');
  for (const s of segs) {
    const members = await matchingCustomerIds(trx, c.workspace_id, evaluatedTree(s), ids, now);
    for (const id of members) out.set(id, [...(out.get(id) ?? []), String(s.id)]);
  }
  return out;
}
