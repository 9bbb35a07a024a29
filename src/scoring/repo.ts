import type { Knex } from 'knex';
import type { Db } from '../db';
import type { SegmentNode } from '../segments/schema';

export interface StoredRule {
  name: string;
  points: number;
  when: SegmentNode; // as the user wrote it (segment references kept)
  expanded?: SegmentNode; // self-contained, references inlined: what is evaluated
}

export interface ScoringRow {
  workspace_id: string;
  rules: StoredRule[];
  updated_at: Date;
  scored_at: Date | null;
}

type Conn = Db | Knex.Transaction;

export async function getRules(db: Conn, workspaceId: string): Promise<ScoringRow | undefined> {
  return db('scoring_rules').where({ workspace_id: workspaceId }).first();
}

export async function saveRules(db: Conn, workspaceId: string, rules: StoredRule[], now: Date): Promise<void> {
  await db('scoring_rules')
    .insert({ workspace_id: workspaceId, rules: JSON.stringify(rules), updated_at: now })
    .onConflict('workspace_id')
    .merge(['rules', 'updated_at']);
}

export async function markScored(db: Conn, workspaceId: string, now: Date): Promise<void> {
  await db('scoring_rules').where({ workspace_id: workspaceId }).update({ scored_at: now });
}

/** Workspaces with at least one rule: the nightly job re-scores only these. */
export async function workspacesWithRules(db: Db): Promise<string[]> {
  const rows = await db('scoring_rules').whereRaw("jsonb_array_length(rules) > 0").orderBy('workspace_id').select('workspace_id');
  return rows.map((r: { workspace_id: string }) => r.workspace_id);
}

/**
 * Writes every customer's lead score in one statement. `matches` is a UNION ALL of
 * (customer_id, points), one branch per rule, each branch the segment compiler's member query:
 * the database evaluates every rule set-based and sums per customer. Rows whose score does not
 * change are not touched, so a re-score after a small change writes little. All rules are read
 * from one snapshot, so a rule that refers to a segment on leadScore sees the previous scores.
 */
export async function writeLeadScores(db: Conn, workspaceId: string, matches: Knex.QueryBuilder | null): Promise<number> {
  if (!matches) {
    return db('customer_stats').where({ workspace_id: workspaceId }).whereNot('lead_score', 0).update({ lead_score: 0 });
  }
  const res = await db.raw(
    `UPDATE customer_stats s SET lead_score = coalesce(m.score, 0)
     FROM customer_stats s2
     LEFT JOIN (SELECT u.customer_id, sum(u.points)::int AS score FROM (?) u GROUP BY u.customer_id) m ON m.customer_id = s2.customer_id
     WHERE s2.workspace_id = ? AND s.customer_id = s2.customer_id AND s.lead_score IS DISTINCT FROM coalesce(m.score, 0)`,
    [matches, workspaceId],
  );
  return res.rowCount ?? 0;
}
