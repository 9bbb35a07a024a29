import type { Knex } from 'knex';
import type { Db } from '../db';
import { evaluatedTree, membersQuery, segmentsAudienceQuery } from '../segments/service';
import { getWorkspace } from '../workspaces/repo';
import { BatchInput, BEFORE_ALL_IDS, insertBatch, nextBatch, SegmentQuery } from './fanout-sql';
import { campaignPeriod } from '../messages/partitions';
import type { CampaignRow } from './repo';

export const FANOUT_BATCH = 10_000;

/**
 * The first batch of a fan-out is small and each next one four times bigger, up to FANOUT_BATCH:
 * dispatch starts on the first rows after a few milliseconds instead of waiting for a whole
 * batch of 10,000 (1.5-2.5 s, a tenth of a 20,000-SMS campaign's time on the bench machine).
 */
export const FIRST_FANOUT_BATCH = 500;
export const nextFanoutBatch = (size: number) => Math.min(size * 4, FANOUT_BATCH);

/** Rows not yet assigned a variant wait for the A/B winner with send_after 'infinity'. */
export const AWAITING_WINNER = 'infinity';

/**
 * One fan-out batch in one transaction: the next `size` audience customers after the
 * checkpoint become outbox rows (skipped ones with their reason), and the checkpoint moves to
 * the last of them in the same commit. Returns the ids of rows due now, and whether it was the
 * last batch. A concurrent fan-out of the same campaign waits on the row lock, then sees the new
 * checkpoint, so no customer is written twice (the unique keys would refuse it anyway).
 */
export async function fanoutBatch(db: Db, campaignId: string, now: Date, size = FANOUT_BATCH): Promise<{ due: string[]; done: boolean; inserted: number; period: string } | null> {
  if (probing.has(campaignId)) return fanoutOnce(db, campaignId, now, size, true);
  try {
    return await fanoutOnce(db, campaignId, now, size, false);
  } catch (err) {
    // An address of this batch was taken by an earlier one: the batch rolled back with its
    // checkpoint, and it and the rest of this fan-out probe every address (insertBatch).
    if ((err as { code?: string }).code !== '23505') throw err;
    probing.add(campaignId);
    return fanoutOnce(db, campaignId, now, size, true);
  }
}

/**
 * Campaigns (in this process) whose fan-out met an address that an earlier batch had taken. The
 * others write their batches without probing each address against the earlier rows (insertBatch);
 * the unique index on (campaign, channel, address) stops one that was, and the batch is written again.
 */
const probing = new Set<string>();

async function fanoutOnce(db: Db, campaignId: string, now: Date, size: number, probe: boolean): Promise<{ due: string[]; done: boolean; inserted: number; period: string } | null> {
  return db.transaction(async (trx) => {
    const c = (await trx('campaigns').where({ id: campaignId }).forUpdate().first()) as CampaignRow | undefined;
    if (!c || c.status !== 'sending' || c.fanned_out_at) return null;
    // The commit need not wait for its WAL flush (about 10 ms a batch). Were Postgres itself to
    // crash before the flush, the batch would be lost together with its checkpoint and written
    // again on resume; the dispatch jobs already enqueued for it find its ids gone (or reissued to
    // rows that are claimed once, like any row). Nothing of the batch is sent before the flush:
    // a claim commits synchronously, which flushes all WAL before it, this commit included.
    await trx.raw("SELECT set_config('synchronous_commit', 'off', true)");
    const { settings } = await getWorkspace(trx as unknown as Db, c.workspace_id);
    const { query: audience } = await segmentsAudienceQuery(trx, c.workspace_id, c.segment_ids, c.exclude_segment_ids, now);
    const after = c.fanout_cursor ?? BEFORE_ALL_IDS;
    // Quiet hours need the batch's time zones, and several segments the batch's ids, before the
    // batch is written: then it is read first (ids and zones) and written by those ids. Otherwise
    // the statement takes the next `size` itself.
    let input: BatchInput = { audience, after, bound: { limit: size }, zones: [], segments: [] };
    let read: string[] | null = null;
    if (settings.quietHours || c.segment_ids.length > 1) {
      const next = await nextBatch(trx, c.workspace_id, audience, after, size, settings.timezone);
      read = next.ids;
      input = { ...input, bound: { ids: next.ids }, zones: next.zones, segments: await segmentQueries(trx, c, now) };
    }
    const written = read?.length === 0 ? { n: 0, last: null, due: [] } : await insertBatch(trx, c, settings, input, now, probe || c.holdout_percent > 0);
    const n = read ? read.length : written.n;
    const last = read ? (read[read.length - 1] ?? null) : written.last;
    const done = n < size;
    const set: Record<string, unknown> = { updated_at: now };
    if (last !== null) set.fanout_cursor = last;
    if (done) {
      probing.delete(c.id);
      set.fanned_out_at = now;
      if (c.ab_test) {
        const decideAt = new Date(now.getTime() + c.ab_test.decideAfterHours * 3600_000);
        set.ab_test = JSON.stringify({ ...c.ab_test, phase: 'testing', decideAt: decideAt.toISOString() });
      }
    }
    await trx('campaigns').where({ id: c.id }).update(set);
    return { due: written.due, done, inserted: written.n, period: campaignPeriod(c) };
  });
}

/** Each segment of a campaign of several, as a members query (for the snapshot's segmentIds). */
async function segmentQueries(trx: Knex.Transaction, c: CampaignRow, now: Date): Promise<SegmentQuery[]> {
  if (c.segment_ids.length < 2) return [];
  const segs = await trx('segments').where({ workspace_id: c.workspace_id }).whereIn('id', c.segment_ids).select('id', 'kind', 'definition');
  const byId = new Map(segs.map((s) => [String(s.id), s]));
  return c.segment_ids.flatMap((id) => {
    const s = byId.get(id);
    return s ? [{ id, query: membersQuery(trx, c.workspace_id, evaluatedTree(s), now) }] : [];
  });
}
