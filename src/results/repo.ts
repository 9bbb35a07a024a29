import type { Db } from '../db';
import { bindings } from '../db';
import { notFound } from '../errors';
import type { GroupBy } from './schema';
import { ageBandSql } from './snapshot';

/**
 * The report SQL: one pass over a campaign's (or automation's) message rows, grouped by an
 * attribute of the send-time snapshot. Group expressions come from this allow-list only.
 *
 * Snapshot keys read: ageBand (else age, else birthDate, both as of the row's created_at),
 * city, gender, segmentIds (array: a message counts in every segment it matched).
 */
const AGE = `coalesce(
    CASE WHEN jsonb_typeof(m.snapshot->'age') = 'number' THEN (m.snapshot->>'age')::numeric END,
    CASE WHEN m.snapshot->>'birthDate' ~ '^\\d{4}-\\d{2}-\\d{2}$'
      THEN extract(year FROM age((m.created_at AT TIME ZONE 'UTC')::date, (m.snapshot->>'birthDate')::date)) END)`;

export { AGE_BANDS } from './snapshot';

const AGE_BAND = `CASE WHEN jsonb_exists(m.snapshot, 'ageBand') THEN coalesce(m.snapshot->>'ageBand', 'unknown')
    ELSE coalesce(${ageBandSql(`(${AGE})`)}, 'unknown') END`;

/** The totals row of a segment report (not a uuid, so never a segment id). */
export const ALL = '*all*';

const GROUPS: Record<GroupBy, { expr: string; expand?: string }> = {
  variant: { expr: `coalesce(m.variant, 'default')` },
  // A message counts in each of its segments (or "unknown" without any). The rows are first
  // aggregated per distinct segmentIds array (few, however many messages), and only those sums are
  // expanded per segment, plus one ALL row: the totals, which cannot be summed from overlapping
  // segments, come out of the same single scan.
  segment: {
    expr: `CASE WHEN jsonb_typeof(m.snapshot->'segmentIds') = 'array' AND jsonb_array_length(m.snapshot->'segmentIds') > 0
                THEN m.snapshot->'segmentIds' ELSE '["unknown"]'::jsonb END`,
    expand: `CROSS JOIN LATERAL jsonb_array_elements_text(x.grp || '["${ALL}"]'::jsonb) AS s(seg)`,
  },
  ageBand: { expr: AGE_BAND },
  city: { expr: `coalesce(nullif(m.snapshot->>'city', ''), 'unknown')` },
  gender: { expr: `coalesce(nullif(m.snapshot->>'gender', ''), 'unknown')` },
  step: { expr: `coalesce(m.step_index::text, 'unknown')` },
};

export interface GroupRow {
  grp: string;
  targeted: number;
  eligible: number;
  sent: number;
  delivered: number;
  opened: number;
  clicked: number;
  converted: number;
  revenue: string;
  held_out: number;
  held_out_converted: number;
  held_out_revenue: string;
}

// Held-out rows are the control group and are counted apart; "eligible" rows are the treatment
// rows that were meant to be sent (not skipped by a sending rule, not cancelled): the
// denominator of the treatment conversion rate, as held-out rows are drawn from that same pool.
// Revenue: the net amount stored on the row at attribution, unless the purchase has refunds, in
// which case it is read again (total less refunds) so a refund after the conversion shows. Only
// refunded purchases are joined (a small partial index): joining every converted row's purchase
// cost a third of the report at 1M messages.
const AGGREGATES = `
  count(*) FILTER (WHERE m.status <> 'held_out')::int AS targeted,
  count(*) FILTER (WHERE m.status NOT IN ('held_out', 'skipped', 'cancelled'))::int AS eligible,
  count(m.sent_at) FILTER (WHERE m.status <> 'held_out')::int AS sent,
  count(m.delivered_at) FILTER (WHERE m.status <> 'held_out')::int AS delivered,
  count(m.opened_at) FILTER (WHERE m.status <> 'held_out')::int AS opened,
  count(m.clicked_at) FILTER (WHERE m.status <> 'held_out')::int AS clicked,
  count(m.converted_at) FILTER (WHERE m.status <> 'held_out')::int AS converted,
  coalesce(sum(coalesce(p.total - p.refunded, m.revenue)) FILTER (WHERE m.status <> 'held_out' AND m.converted_at IS NOT NULL), 0) AS revenue,
  count(*) FILTER (WHERE m.status = 'held_out')::int AS held_out,
  count(m.converted_at) FILTER (WHERE m.status = 'held_out')::int AS held_out_converted,
  coalesce(sum(coalesce(p.total - p.refunded, m.revenue)) FILTER (WHERE m.status = 'held_out' AND m.converted_at IS NOT NULL), 0) AS held_out_revenue`;

const INT_COLS = ['targeted', 'eligible', 'sent', 'delivered', 'opened', 'clicked', 'converted', 'held_out', 'held_out_converted'];
const SUMS = [...INT_COLS.map((c) => `sum(x.${c})::int AS ${c}`), 'sum(x.revenue) AS revenue', 'sum(x.held_out_revenue) AS held_out_revenue'].join(', ');

export type Owner = { campaignId: string } | { automationId: string };

function ownerWhere(owner: Owner): [string, string] {
  return 'campaignId' in owner ? ['m.campaign_id = ?', owner.campaignId] : ['m.automation_id = ?', owner.automationId];
}

/** Aggregates per group; with group null, one row over everything (for totals). */
export async function aggregate(db: Db, owner: Owner, groupBy: GroupBy | null): Promise<GroupRow[]> {
  const [where, id] = ownerWhere(owner);
  const g = groupBy ? GROUPS[groupBy] : null;
  const inner = `SELECT ${g ? g.expr : `'all'`} AS grp, ${AGGREGATES}
         FROM messages m
         LEFT JOIN purchases p ON p.id = m.conversion_purchase_id AND p.workspace_id = m.workspace_id AND p.refunded > 0
        WHERE ${where}
        ${g ? 'GROUP BY 1' : ''}`;
  const sql = g?.expand
    ? `SELECT s.seg AS grp, ${SUMS} FROM (${inner}) x ${g.expand} GROUP BY 1`
    : inner;
  // JIT off: at 1M rows the cost estimate crosses the JIT threshold, and compiling this one-off
  // query cost more than it saved (measured: ~40% of the report at 100k messages).
  const { rows } = await db.transaction(async (trx) => {
    await trx.raw('SET LOCAL jit = off');
    const res = await trx.raw(sql, bindings([id]));
    return res as { rows: GroupRow[] };
  });
  return rows;
}

export async function campaignOf(db: Db, workspaceId: string, id: string) {
  const c = await db('campaigns').where({ id, workspace_id: workspaceId }).first('id', 'name', 'status', 'holdout_percent', 'variants', 'ab_test');
  if (!c) throw notFound('campaign');
  return c;
}

export async function automationOf(db: Db, workspaceId: string, id: string) {
  const a = await db('automations').where({ id, workspace_id: workspaceId }).first('id', 'name', 'steps');
  if (!a) throw notFound('automation');
  return a;
}

export async function segmentNames(db: Db, workspaceId: string, ids: string[]): Promise<Map<string, string>> {
  const valid = ids.filter((i) => /^[0-9a-f-]{36}$/i.test(i));
  if (!valid.length) return new Map();
  const rows = await db('segments').where('workspace_id', workspaceId).whereIn('id', valid).select('id', 'name');
  return new Map(rows.map((r) => [String(r.id), String(r.name)]));
}
