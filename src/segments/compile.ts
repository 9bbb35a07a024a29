import type { Knex } from 'knex';
import { AppError } from '../errors';
import { FieldDef, resolveField, Table } from './fields';
import { PRESETS } from './presets';
import type { Condition, EventSpec, FieldRef, PurchasedSpec, SegmentNode } from './schema';

/**
 * The segment compiler: a pure function from a validated rule tree to one SQL boolean over
 * `customers c LEFT JOIN customer_stats s`, with every user value a bound parameter and every
 * identifier a constant from fields.ts. Leaves may be NULL (SQL's "unknown"), which AND/OR and
 * WHERE already treat as false; `not` is the only place where that differs, so it coalesces.
 */
export interface Fragment {
  sql: string;
  bindings: unknown[];
}

export type ResolvedSegment = { kind: 'static' } | { kind: 'dynamic'; definition: SegmentNode };

export interface CompileContext {
  workspaceId: string;
  now: Date;
  /** Every segment the tree references, transitively, loaded and checked by the service. */
  segments: ReadonlyMap<string, ResolvedSegment>;
  /** The customer's id as subqueries correlate on it: `c.id`, or `s.customer_id` in a count over stats alone (count.ts). */
  idCol?: 'c.id' | 's.customer_id';
}

const DAY = 86400000;
const SQL_OP = { eq: '=', gt: '>', gte: '>=', lt: '<', lte: '<=' } as const;
type Cmp = keyof typeof SQL_OP;

const frag = (sql: string, ...bindings: unknown[]): Fragment => ({ sql, bindings });
const join = (parts: Fragment[], sep: string, empty: string): Fragment =>
  parts.length ? { sql: `(${parts.map((p) => p.sql).join(sep)})`, bindings: parts.flatMap((p) => p.bindings) } : frag(empty);
const not = (f: Fragment): Fragment => ({ sql: `NOT coalesce(${f.sql}, false)`, bindings: f.bindings });
const wrap = (f: Fragment, before: string, after: string): Fragment => ({ sql: before + f.sql + after, bindings: f.bindings });

export const tableOf = (def: FieldDef): Table => (def.sql.kind === 'age' ? 'c' : def.sql.kind === 'aov' ? 's' : def.sql.table);
/**
 * The alias a field is read from: its own table's, except that a count over customer_stats alone
 * (idCol s.customer_id) reads the profile columns stats carries a copy of from there.
 */
const aliasOf = (def: FieldDef, ctx: CompileContext): Table => (ctx.idCol === 's.customer_id' && def.statsCopy ? 's' : tableOf(def));
const utcDate = (d: Date) => d.toISOString().slice(0, 10);

/** The value of a field as an SQL expression, `alias` naming the field's own table. */
export function fieldExpr(def: FieldDef, alias: string, now: Date): Fragment {
  const s = def.sql;
  switch (s.kind) {
    case 'text':
    case 'num':
      return frag(`${alias}.${s.column}`);
    case 'days':
      // In double precision (date_part), not numeric (extract): the same whole days for spans up to
      // about 270 years (a float8 of seconds keeps every microsecond below 2^33 s), at half the cost
      // per row, which fading pays on every buyer (compared with the customer's own rhythm).
      return frag(`floor(date_part('epoch', ?::timestamptz - ${alias}.${s.column}) / 86400)`, now);
    case 'age':
      // Full years, counting a birthday as reached on the same month and day (floor, also before birth).
      return frag(
        `(extract(year from ?::date) - extract(year from ${alias}.birth_date) - CASE WHEN to_char(?::date, 'MMDD') < to_char(${alias}.birth_date, 'MMDD') THEN 1 ELSE 0 END)`,
        utcDate(now),
        utcDate(now),
      );
    case 'aov':
      return frag(`(${alias}.total_spent / NULLIF(${alias}.purchase_count, 0))`);
  }
}

/** The calendar date `years` years before `now` (UTC); Feb 29 falls back to Feb 28. */
export function yearsBefore(now: Date, years: number): string {
  const y = now.getUTCFullYear() - years;
  const m = now.getUTCMonth();
  let d = now.getUTCDate();
  while (new Date(Date.UTC(y, m, d)).getUTCMonth() !== m) d--;
  const t = new Date(Date.UTC(2000, m, d));
  t.setUTCFullYear(y);
  return utcDate(t);
}

/**
 * A comparison with a constant. Day counts and ages are turned into ranges on the stored
 * timestamp or birth date, so that they are exact and can use an index.
 */
function compare(def: FieldDef, op: Cmp, v: number, ctx: CompileContext): Fragment {
  const now = ctx.now;
  const s = def.sql;
  if (s.kind === 'days' || s.kind === 'age') {
    const col = s.kind === 'days' ? `${s.table}.${s.column}` : `${aliasOf(def, ctx)}.birth_date`;
    // "value >= k" holds up to this bound (a timestamp k days ago, or the date k years ago).
    const bound = (k: number) => (s.kind === 'days' ? new Date(now.getTime() - k * DAY) : yearsBefore(now, k));
    const cast = s.kind === 'days' ? '::timestamptz' : '::date';
    const atLeast = (k: number) => frag(`${col} <= ?${cast}`, bound(k));
    const below = (k: number) => frag(`${col} > ?${cast}`, bound(k));
    switch (op) {
      case 'gte': return atLeast(Math.ceil(v));
      case 'gt': return atLeast(Math.floor(v) + 1);
      case 'lte': return below(Math.floor(v) + 1);
      case 'lt': return below(Math.ceil(v));
      case 'eq': return Number.isInteger(v) ? join([atLeast(v), below(v + 1)], ' AND ', 'TRUE') : frag('FALSE');
    }
  }
  if (s.kind === 'aov') return frag(`(s.purchase_count > 0 AND s.total_spent ${SQL_OP[op]} (?::numeric * s.purchase_count))`, v);
  // An integer column against a whole number stays integer (no cast of the column per row, and
  // its indexes and partial-index predicates apply); against a fraction it is compared exactly.
  const cast = def.int && Number.isInteger(v) ? '::bigint' : '::numeric';
  return frag(`${s.table}.${(s as { column: string }).column} ${SQL_OP[op]} ?${cast}`, v);
}

/** topPercent/bottomPercent: the k-th value from the top (bottom) of the workspace, k = ceil(N * p / 100). */
function rank(def: FieldDef, top: boolean, p: number, ctx: CompileContext): Fragment {
  const table = tableOf(def);
  const from = table === 'c' ? 'customers' : 'customer_stats';
  const ranked = (a: string): Fragment => {
    const x = fieldExpr(def, a, ctx.now);
    const purchase = def.needsPurchase ? ` AND ${a}.purchase_count > 0` : '';
    return { sql: `${a}.workspace_id = ? AND ${x.sql} IS NOT NULL${purchase}`, bindings: [ctx.workspaceId, ...x.bindings] };
  };
  const v = fieldExpr(def, 'r2', ctx.now);
  const f2 = ranked('r2');
  const f3 = ranked('r3');
  const threshold: Fragment = {
    sql:
      `(SELECT ${top ? 'min' : 'max'}(t.v) FROM (SELECT ${v.sql} AS v FROM ${from} r2 WHERE ${f2.sql} ORDER BY 1 ${top ? 'DESC' : 'ASC'} ` +
      `LIMIT (SELECT ceil(count(*) * ?::numeric / 100)::bigint FROM ${from} r3 WHERE ${f3.sql})) t)`,
    bindings: [...v.bindings, ...f2.bindings, p, ...f3.bindings],
  };
  const x = fieldExpr(def, aliasOf(def, ctx), ctx.now);
  const purchase = def.needsPurchase ? 's.purchase_count > 0 AND ' : '';
  return { sql: `(${purchase}${x.sql} ${top ? '>=' : '<='} ${threshold.sql})`, bindings: [...x.bindings, ...threshold.bindings] };
}

/**
 * char(n) equality ignores trailing spaces, text equality does not; the stored value read as text
 * has none, so a value with one matches nothing as text, and is left out of a char(n) comparison.
 */
const asText = (v: string) => !v.endsWith(' ');

function fieldCondition(c: Condition, def: FieldDef, ctx: CompileContext): Fragment {
  const x = fieldExpr(def, aliasOf(def, ctx), ctx.now);
  const v = c.value;
  const isText = def.type === 'string';
  const bpchar = def.sql.kind === 'text' && def.sql.bpchar === true;
  switch (c.op) {
    case 'exists': return wrap(x, '(', ' IS NOT NULL)');
    case 'notExists': return wrap(x, '(', ' IS NULL)');
    case 'neq': return not(fieldCondition({ ...c, op: 'eq' }, def, ctx));
    case 'notIn': return not(fieldCondition({ ...c, op: 'in' }, def, ctx));
    case 'contains': return { sql: `strpos(lower(${x.sql}), lower(?::text)) > 0`, bindings: [...x.bindings, v] };
    case 'topPercent':
    case 'bottomPercent': return rank(def, c.op === 'topPercent', v as number, ctx);
    case 'between': {
      const [lo, hi] = v as [number, number];
      return join([compare(def, 'gte', lo, ctx), compare(def, 'lte', hi, ctx)], ' AND ', 'TRUE');
    }
    case 'in':
      if (bpchar) return { sql: `${x.sql} = ANY(?::bpchar[])`, bindings: [...x.bindings, (v as string[]).filter(asText)] };
      if (isText) return { sql: `${x.sql} = ANY(?::text[])`, bindings: [...x.bindings, v] };
      if (def.sql.kind === 'num') return { sql: `${x.sql} = ANY(?::numeric[])`, bindings: [...x.bindings, v] };
      return join((v as number[]).map((n) => compare(def, 'eq', n, ctx)), ' OR ', 'FALSE');
    default: {
      const op = c.op as Cmp;
      if (typeof v === 'object' && v !== null) return fieldRefCompare(x, op, v as FieldRef, ctx);
      if (bpchar) return asText(v as string) ? { sql: `${x.sql} = ?::bpchar`, bindings: [...x.bindings, v] } : frag('FALSE');
      if (isText) return { sql: `${x.sql} = ?::text`, bindings: [...x.bindings, v] };
      return compare(def, op, v as number, ctx);
    }
  }
}

function fieldRefCompare(x: Fragment, op: Cmp, ref: FieldRef, ctx: CompileContext): Fragment {
  const target = resolveField(ref.field);
  if (!target || target.attribute) throw new AppError('unprocessable', 'field reference must name a numeric field');
  const y = fieldExpr(target.def, aliasOf(target.def, ctx), ctx.now);
  return { sql: `(${x.sql}) ${SQL_OP[op]} ((${y.sql}) * ?::float8)`, bindings: [...x.bindings, ...y.bindings, ref.times ?? 1] };
}

function attributeCondition(c: Condition, key: string): Fragment {
  const v = c.value;
  const json = frag('(c.attributes -> ?)', key);
  const typed = (t: string, cast: string) => frag(`(CASE WHEN jsonb_typeof(c.attributes -> ?) = '${t}' THEN (c.attributes ->> ?)${cast} END)`, key, key);
  switch (c.op) {
    case 'exists': return wrap(json, '(', ' IS NOT NULL)');
    case 'notExists': return wrap(json, '(', ' IS NULL)');
    case 'eq': return { sql: `${json.sql} = ?::jsonb`, bindings: [key, JSON.stringify(v)] };
    case 'in': return { sql: `${json.sql} = ANY(?::jsonb[])`, bindings: [key, (v as unknown[]).map((x) => JSON.stringify(x))] };
    case 'neq': return not(attributeCondition({ ...c, op: 'eq' }, key));
    case 'notIn': return not(attributeCondition({ ...c, op: 'in' }, key));
    case 'contains': {
      const t = typed('string', '');
      return { sql: `strpos(lower(${t.sql}), lower(?::text)) > 0`, bindings: [...t.bindings, v] };
    }
    case 'between': {
      const [lo, hi] = v as [number, number];
      const n = typed('number', '::numeric');
      return { sql: `(${n.sql} BETWEEN ?::numeric AND ?::numeric)`, bindings: [...n.bindings, lo, hi] };
    }
    default: {
      const n = typed('number', '::numeric');
      return { sql: `${n.sql} ${SQL_OP[c.op as Cmp]} ?::numeric`, bindings: [...n.bindings, v] };
    }
  }
}

/** "Within N days" counts whole days elapsed: the time is after now - (N + 1) days. */
const windowStart = (now: Date, days: number) => new Date(now.getTime() - (days + 1) * DAY);

function activity(table: 'purchases' | 'purchase_items' | 'events', filters: Fragment[], minCount: number, having: Fragment[], countExpr: string, ctx: CompileContext): Fragment {
  const where = join([frag('x.workspace_id = ?', ctx.workspaceId), ...filters], ' AND ', 'TRUE');
  if (minCount <= 1 && !having.length) {
    return { sql: `EXISTS (SELECT 1 FROM ${table} x WHERE x.customer_id = ${ctx.idCol ?? 'c.id'} AND ${where.sql})`, bindings: where.bindings };
  }
  const h = join([frag(`${countExpr} >= ?`, minCount), ...having], ' AND ', 'TRUE');
  return {
    sql: `${ctx.idCol ?? 'c.id'} IN (SELECT x.customer_id FROM ${table} x WHERE ${where.sql} GROUP BY x.customer_id HAVING ${h.sql})`,
    bindings: [...where.bindings, ...h.bindings],
  };
}

function purchased(spec: PurchasedSpec, ctx: CompileContext): Fragment {
  const items = spec.category !== undefined || spec.brand !== undefined || spec.sku !== undefined;
  const filters: Fragment[] = [];
  if (spec.category !== undefined) filters.push(frag('x.category = ?', spec.category));
  if (spec.brand !== undefined) filters.push(frag('x.brand = ?', spec.brand));
  if (spec.sku !== undefined) filters.push(frag('x.sku = ?', spec.sku));
  if (spec.withinDays !== undefined) filters.push(frag('x.occurred_at > ?::timestamptz', windowStart(ctx.now, spec.withinDays)));
  const spent = items ? 'sum(x.quantity * x.unit_price)' : 'sum(x.total - x.refunded)';
  const having = spec.minSpent === undefined ? [] : [frag(`${spent} >= ?::numeric`, spec.minSpent)];
  return activity(items ? 'purchase_items' : 'purchases', filters, spec.minCount ?? 1, having, items ? 'count(DISTINCT x.purchase_id)' : 'count(*)', ctx);
}

function event(spec: EventSpec, ctx: CompileContext): Fragment {
  const filters = [frag('x.type = ?', spec.type)];
  if (spec.channel !== undefined) filters.push(frag('x.channel = ?', spec.channel));
  if (spec.withinDays !== undefined) filters.push(frag('x.occurred_at > ?::timestamptz', windowStart(ctx.now, spec.withinDays)));
  return activity('events', filters, spec.minCount ?? 1, [], 'count(*)', ctx);
}

export function compileNode(node: SegmentNode, ctx: CompileContext, stack: readonly string[] = []): Fragment {
  if ('all' in node) return join(node.all.map((n) => compileNode(n, ctx, stack)), ' AND ', 'TRUE');
  if ('any' in node) return join(node.any.map((n) => compileNode(n, ctx, stack)), ' OR ', 'FALSE');
  if ('not' in node) return not(compileNode(node.not, ctx, stack));
  if ('purchased' in node) return purchased(node.purchased, ctx);
  if ('event' in node) return event(node.event, ctx);
  if ('preset' in node) return wrap(compileNode(PRESETS[node.preset].definition, ctx, stack), '(', ')');
  if ('segment' in node) {
    // Stored and validated trees have live segments inlined already (service.ts), so a reference
    // left in a tree is a static list unless the caller handed its definition in the context.
    const seg = ctx.segments.get(node.segment) ?? { kind: 'static' };
    if (seg.kind === 'static') return frag('EXISTS (SELECT 1 FROM segment_static_members m WHERE m.segment_id = ? AND m.customer_id = c.id)', node.segment);
    if (stack.includes(node.segment)) throw new AppError('unprocessable', 'segment references form a cycle', [{ path: 'segment', message: 'cycle' }]);
    return wrap(compileNode(seg.definition, ctx, [...stack, node.segment]), '(', ')');
  }
  const f = resolveField(node.field);
  if (!f) throw new AppError('unprocessable', 'segment definition is invalid', [{ path: 'field', message: 'unknown field' }]);
  return wrap(f.attribute ? attributeCondition(node, f.key) : fieldCondition(node, f.def, ctx), '(', ')');
}

/** One query selecting `c.id AS customer_id` of the matching customers of the workspace. */
export function compileQuery(knex: Knex, node: SegmentNode, ctx: CompileContext): Knex.QueryBuilder {
  const f = compileNode(node, ctx);
  return knex
    .from('customers as c')
    .leftJoin('customer_stats as s', (j) => j.on('s.customer_id', 'c.id').andOn('s.workspace_id', 'c.workspace_id'))
    .where('c.workspace_id', ctx.workspaceId)
    .whereRaw(f.sql, f.bindings as Knex.RawBinding[])
    .select('c.id as customer_id');
}
