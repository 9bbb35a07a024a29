import type { Knex } from 'knex';
import { compileNode, compileQuery, CompileContext, tableOf } from './compile';
import { FieldDef, resolveField } from './fields';
import { PRESETS } from './presets';
import type { FieldRef, SegmentNode } from './schema';

/**
 * A segment's count as one query. Most rules read customer_stats alone (presets, spend, recency,
 * purchases of a category): those are counted over customer_stats, without the join to customers
 * that compileQuery's member list needs. At 1M customers that join was most of the time of a count
 * (a hash join of two 1M-row scans), whatever the rule.
 *
 * It is the same count because stats rows and customers are one to one within a workspace (a
 * stats row is created with its customer, carries the customer's workspace_id and goes with it,
 * ON DELETE CASCADE), and because it is only used when the rule is false for a customer without a
 * stats row (rejectsNoStats), so that the LEFT JOIN's unmatched customers are not counted either way.
 * Age, country, consent and gender are read from the copies customer_stats carries (kept equal to
 * the customer's by triggers, migration 0023), so a demographic + RFM stack is counted over
 * customer_stats alone too: one index-only scan instead of a join of two 1M-row scans.
 */

const isRef = (v: unknown): v is FieldRef => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Whether the rule reads anything but customer_stats (profile fields without a copy there,
 * attributes, static lists).
 */
export function readsCustomers(node: SegmentNode): boolean {
  if ('all' in node) return node.all.some(readsCustomers);
  if ('any' in node) return node.any.some(readsCustomers);
  if ('not' in node) return readsCustomers(node.not);
  if ('preset' in node) return readsCustomers(PRESETS[node.preset].definition);
  if ('purchased' in node || 'event' in node) return false; // correlated on the customer's id only
  if ('segment' in node) return true;
  const f = resolveField(node.field);
  if (!f || f.attribute || !onStats(f.def)) return true;
  if (isRef(node.value)) {
    const r = resolveField(node.value.field);
    return !r || r.attribute || !onStats(r.def);
  }
  return false;
}

/** A field customer_stats holds: its own, or a profile column it carries a copy of (migration 0023). */
const onStats = (def: FieldDef) => tableOf(def) === 's' || def.statsCopy === true;

/**
 * Whether the rule is false or unknown (NULL) for a customer whose stats row is missing, by the
 * shape of the compiled SQL: a comparison on a stats column is NULL then; `not` (compiled with
 * coalesce) and notExists are true then; activity subqueries do not read stats at all.
 */
export function rejectsNoStats(node: SegmentNode): boolean {
  if ('all' in node) return node.all.some(rejectsNoStats);
  if ('any' in node) return node.any.length > 0 && node.any.every(rejectsNoStats);
  if ('not' in node) return false;
  if ('preset' in node) return rejectsNoStats(PRESETS[node.preset].definition);
  if ('purchased' in node || 'event' in node || 'segment' in node) return false;
  const f = resolveField(node.field);
  if (!f || f.attribute || tableOf(f.def) !== 's') return false;
  return !['notExists', 'neq', 'notIn'].includes(node.op);
}

/** `SELECT count(*) AS n` of the customers matching the rule. */
export function compileCount(knex: Knex, node: SegmentNode, ctx: CompileContext): Knex.QueryBuilder {
  if (!readsCustomers(node) && rejectsNoStats(node)) {
    const f = compileNode(node, { ...ctx, idCol: 's.customer_id' });
    return knex.from('customer_stats as s').where('s.workspace_id', ctx.workspaceId).whereRaw(f.sql, f.bindings as Knex.RawBinding[]).count('* as n');
  }
  return knex.from(compileQuery(knex, node, ctx).as('m')).count('* as n');
}
