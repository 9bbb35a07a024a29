import type { Knex } from 'knex';
import type { Db } from '../db';
import { AppError, type ErrorDetail } from '../errors';
import { membersQuery, validateAndExpand } from '../segments/service';
import type { SegmentNode } from '../segments/schema';
import * as repo from './repo';
import { MAX_POINTS, MIN_POINTS, type PutScoringBody } from './schema';

type Conn = Db | Knex.Transaction;

/** Paths (within `when`) that name the leadScore field: a rule may not score on the score itself. */
function leadScorePaths(v: unknown, path: string, out: string[]): string[] {
  if (Array.isArray(v)) v.forEach((x, i) => leadScorePaths(x, `${path}.${i}`, out));
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      if (k === 'field' && x === 'leadScore') out.push(`${path}.field`);
      else leadScorePaths(x, `${path}.${k}`, out);
    }
  }
  return out;
}

/**
 * Checks the rules as segment trees would be checked (422 naming the path, 404 for another
 * workspace's segment) and returns them normalised. Points are whole numbers in -100..100.
 */
export async function validateRules(db: Conn, workspaceId: string, body: PutScoringBody): Promise<repo.StoredRule[]> {
  const errors: ErrorDetail[] = [];
  body.rules.forEach((r, i) => {
    if (!Number.isInteger(r.points) || r.points < MIN_POINTS || r.points > MAX_POINTS) {
      errors.push({ path: `rules.${i}.points`, message: `must be a whole number from ${MIN_POINTS} to ${MAX_POINTS}` });
    }
    for (const p of leadScorePaths(r.when, `rules.${i}.when`, [])) errors.push({ path: p, message: 'a scoring rule cannot depend on leadScore' });
  });
  if (errors.length) throw new AppError('unprocessable', 'scoring rules are invalid', errors);
  const out: repo.StoredRule[] = [];
  for (const [i, r] of body.rules.entries()) {
    const { node, source } = await validateAndExpand(db, workspaceId, r.when, `rules.${i}.when`);
    // A referenced segment is inlined; it must not bring leadScore in by the back door.
    if (leadScorePaths(node, '', []).length) throw new AppError('unprocessable', 'scoring rules are invalid', [{ path: `rules.${i}.when`, message: 'a scoring rule cannot depend on leadScore (through a segment)' }]);
    out.push({ name: r.name, points: r.points, when: source, expanded: node });
  }
  return out;
}

/**
 * The rules' trees as of now: referenced segments are expanded again so that an edited segment
 * counts as edited; a rule whose segment has since been deleted keeps the tree it was saved with.
 */
async function currentTrees(db: Conn, workspaceId: string, rules: repo.StoredRule[]): Promise<repo.StoredRule[]> {
  const out: repo.StoredRule[] = [];
  for (const r of rules) {
    try {
      out.push({ ...r, expanded: (await validateAndExpand(db, workspaceId, r.when)).node });
    } catch {
      out.push(r);
    }
  }
  return out;
}

/** One UNION ALL branch per rule with non-zero points: (customer_id, points) of its members. */
export function matchesQuery(db: Conn, workspaceId: string, rules: repo.StoredRule[], now: Date): Knex.QueryBuilder | null {
  const branches = rules
    .filter((r) => r.points !== 0)
    .map((r, i) => db.select('customer_id', db.raw('?::int AS points', [r.points])).from(membersQuery(db, workspaceId, (r.expanded ?? r.when) as SegmentNode, now).as(`m${i}`)));
  if (branches.length === 0) return null;
  return db.queryBuilder().unionAll(branches, true);
}

/** Recomputes every customer's lead score from the stored rules, as of now. */
export async function scoreLeads(db: Db, workspaceId: string, now: Date): Promise<number> {
  const stored = await repo.getRules(db, workspaceId);
  const rules = await currentTrees(db, workspaceId, stored?.rules ?? []);
  const changed = await repo.writeLeadScores(db, workspaceId, matchesQuery(db, workspaceId, rules, now));
  if (stored) await repo.markScored(db, workspaceId, now);
  return changed;
}

/** Saves the rules and re-scores in one transaction: readers never see new rules with old scores. */
export async function putRules(db: Db, workspaceId: string, body: PutScoringBody, now: Date) {
  return db.transaction(async (trx) => {
    const rules = await validateRules(trx, workspaceId, body);
    await repo.saveRules(trx, workspaceId, rules, now);
    const changed = await repo.writeLeadScores(trx, workspaceId, matchesQuery(trx, workspaceId, rules, now));
    await repo.markScored(trx, workspaceId, now);
    return { rules, changed };
  });
}

export function scoringView(row: repo.ScoringRow | undefined) {
  return {
    rules: (row?.rules ?? []).map((r) => ({ name: r.name, points: r.points, when: r.when })),
    updatedAt: row ? new Date(row.updated_at).toISOString() : null,
    scoredAt: row?.scored_at ? new Date(row.scored_at).toISOString() : null,
  };
}
