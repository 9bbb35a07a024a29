import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Db } from '../db';
import { ageAt, ageBandOf } from '../results/snapshot';
import { evaluatedTree, matchingCustomerIds, segmentsAudienceQuery } from '../segments/service';
import { evaluateRules } from '../messages/rules';
import { getWorkspace } from '../workspaces/repo';
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
    const q = trx('customers as cu')
      .where('cu.workspace_id', c.workspace_id)
      .whereIn('cu.id', query)
      .orderBy('cu.id')
      .limit(FANOUT_BATCH)
      .select('cu.id', 'cu.birth_date', 'cu.gender', 'cu.city');
    if (c.fanout_cursor !== null) q.andWhere('cu.id', '>', c.fanout_cursor);
    const customers = ((await q) as BatchCustomer[]).map((r) => ({ ...r, id: String(r.id) }));
    const done = customers.length < FANOUT_BATCH;
    const rows = customers.length ? await buildRows(trx, c, workspace, customers, now) : [];
    const due: string[] = [];
    for (let i = 0; i < rows.length; i += 1000) {
      const inserted = await trx('messages')
        .insert(rows.slice(i, i + 1000))
        .onConflict()
        .ignore()
        .returning(['id', 'status', 'send_after']);
      for (const r of inserted) if (r.status === 'queued' && r.send_after === null) due.push(String(r.id));
    }
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
    return { due, done, inserted: rows.length };
  });
}

async function buildRows(trx: Knex.Transaction, c: CampaignRow, workspace: Awaited<ReturnType<typeof getWorkspace>>, customers: BatchCustomer[], now: Date) {
  const ids = customers.map((x) => x.id);
  const verdicts = await evaluateRules(trx, workspace, ids.map((id) => ({ key: id, customerId: id, channel: c.channel })), now, { planned: true });
  // Addresses already taken by this campaign's earlier batches: a shared address gets one message.
  const addrs = [...new Set([...verdicts.values()].flatMap((v) => (v.action === 'skip' ? [] : [v.address])))];
  const taken = new Set<string>(
    addrs.length
      ? (await trx('messages').where({ campaign_id: c.id, channel: c.channel }).whereIn('address', addrs).whereNotIn('status', ['skipped', 'held_out']).select('address')).map((r) => String(r.address))
      : [],
  );
  const membership = await segmentMembership(trx, c, ids, now);
  const ab = c.ab_test;
  return customers.map((cu) => {
    const v = verdicts.get(cu.id)!;
    const age = ageAt(cu.birth_date, now);
    const snapshot = { segmentIds: membership.get(cu.id) ?? c.segment_ids, ageBand: ageBandOf(age), city: cu.city, gender: cu.gender };
    const base: Record<string, unknown> = { workspace_id: c.workspace_id, campaign_id: c.id, customer_id: cu.id, channel: c.channel, template_id: c.template_id, snapshot: JSON.stringify(snapshot), created_at: now };
    if (v.action === 'skip') return { ...base, status: 'skipped', skip_reason: v.reason };
    if (taken.has(v.address)) return { ...base, address: v.address, status: 'skipped', skip_reason: 'duplicate' };
    taken.add(v.address);
    if (c.holdout_percent > 0 && bucket(c.id, cu.id, 'holdout') * 100 < c.holdout_percent) return { ...base, address: v.address, status: 'held_out', skip_reason: 'held_out' };
    const row: Record<string, unknown> = { ...base, address: v.address, status: 'queued', dispatch_requested_at: now };
    if (v.action === 'defer') Object.assign(row, { send_after: v.until, quiet_deferred: true });
    if (c.variants.length) {
      if (ab && bucket(c.id, cu.id, 'abtest') * 100 >= ab.testPercent) {
        // Not in the test share: the row waits for the winner (template and variant set then).
        Object.assign(row, { variant: null, send_after: AWAITING_WINNER, dispatch_requested_at: null });
      } else {
        const picked = pickVariant(c.variants, bucket(c.id, cu.id, 'variant'))!;
        Object.assign(row, { variant: picked.key, template_id: picked.templateId });
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
