import { loadModule, parseSync } from 'libpg-query';
import type { Db } from '../../src/db';

/**
 * Tenant isolation of joins, checked on the statements hark really sends (README, Scaling).
 * Each statement is parsed by Postgres's own parser (libpg-query). In every query level (a
 * SELECT, UPDATE ... FROM, DELETE ... USING, and each subquery together with the levels around
 * it, since a correlated or IN subquery is a join too), every two relations that carry a
 * workspace_id must have their workspace_id proven equal by the level's AND-ed equalities:
 * `a.workspace_id = b.workspace_id`, directly or through other columns (`a.workspace_id = w.id
 * AND w.id = b.workspace_id`), or both pinned to the same bound value (`a.workspace_id = $1 AND
 * b.workspace_id = $2` where $1 and $2 carry the same workspace id). Equalities under OR count
 * for nothing. A join of two tenant tables through a global id alone (`m.id = e.message_id`) is
 * the one this reports: it is right only as long as the data are, and on Citus it is not a
 * co-located join.
 */

export interface Captured {
  sql: string;
  bindings: readonly unknown[];
}

export interface Violation {
  pair: string; // "tableA~tableB", sorted
  sql: string;
}

type Node = Record<string, any>;
interface Rel {
  alias: string;
  table: string; // base table, CTE or subquery name
  scoped: boolean;
}
interface Scope {
  rels: Rel[];
  eqs: Array<[string, string]>;
}

/** Tables that have a workspace_id column, and every table's columns (to place unqualified names). */
export interface Schema {
  columns: Map<string, Set<string>>;
}

export async function loadSchema(db: Db): Promise<Schema> {
  const { rows } = await db.raw(`SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema()`);
  const columns = new Map<string, Set<string>>();
  for (const r of rows as Array<{ table_name: string; column_name: string }>) {
    if (!columns.has(r.table_name)) columns.set(r.table_name, new Set());
    columns.get(r.table_name)!.add(r.column_name);
  }
  return { columns };
}

/** Collects every statement a knex instance sends, with its bound values. Returns a stop function. */
export function captureQueries(db: Db, into: Captured[]): () => void {
  const listener = (q: { sql: string; bindings?: readonly unknown[] }) => into.push({ sql: q.sql, bindings: q.bindings ?? [] });
  db.on('query', listener);
  return () => db.removeListener('query', listener);
}

let loaded: Promise<void> | null = null;
export const loadParser = () => (loaded ??= loadModule());

const kind = (n: Node | undefined) => (n ? Object.keys(n)[0] : undefined);

export function checkStatement(stmt: Captured, schema: Schema): Violation[] {
  const out: Violation[] = [];
  let parsed: Node;
  try {
    parsed = parseSync(stmt.sql);
  } catch (err) {
    throw new Error(`unparsable statement (${(err as Error).message}): ${stmt.sql}`);
  }
  const value = (n: Node): string | undefined => {
    const k = kind(n);
    if (k === 'TypeCast') return value(n.TypeCast.arg);
    if (k === 'ParamRef') {
      const v = stmt.bindings[n.ParamRef.number - 1];
      return v === undefined || v === null || Array.isArray(v) || typeof v === 'object' ? undefined : `val:${String(v)}`;
    }
    if (k === 'A_Const') {
      const c = n.A_Const;
      if (c.sval) return `val:${c.sval.sval}`;
      if (c.ival) return `val:${c.ival.ival ?? 0}`;
    }
    return undefined;
  };

  /** Terms of an expression: "alias.column" for a column, "val:..." for a bound value or constant. */
  const term = (n: Node, scope: Rel[]): string | undefined => {
    const k = kind(n);
    if (k === 'TypeCast') return term(n.TypeCast.arg, scope);
    if (k === 'ColumnRef') {
      const f = (n.ColumnRef.fields as Node[]).map((x) => x.String?.sval);
      if (f.some((x) => x === undefined)) return undefined;
      if (f.length === 2) return `${f[0]}.${f[1]}`;
      if (f.length === 1) {
        const owner = scope.find((r) => schema.columns.get(r.table)?.has(f[0])) ?? (scope.length === 1 ? scope[0] : undefined);
        return owner ? `${owner.alias}.${f[0]}` : undefined;
      }
      return undefined;
    }
    return value(n);
  };

  const conjuncts = (n: Node | undefined): Node[] => {
    if (!n) return [];
    if (kind(n) === 'BoolExpr' && n.BoolExpr.boolop === 'AND_EXPR') return (n.BoolExpr.args as Node[]).flatMap(conjuncts);
    return [n];
  };

  const equalities = (where: Node | undefined, scope: Rel[]): Array<[string, string]> => {
    const eqs: Array<[string, string]> = [];
    for (const c of conjuncts(where)) {
      if (kind(c) === 'A_Expr' && c.A_Expr.kind === 'AEXPR_OP' && c.A_Expr.name?.[0]?.String?.sval === '=') {
        const l = term(c.A_Expr.lexpr, scope);
        const r = term(c.A_Expr.rexpr, scope);
        if (l && r) eqs.push([l, r]);
      }
    }
    return eqs;
  };

  const ctes = new Map<string, boolean>(); // CTE name -> exposes workspace_id

  const exposesWorkspace = (targets: Node[] | undefined, inner: Rel[]): boolean =>
    (targets ?? []).some((t) => {
      const rt = t.ResTarget;
      if (rt?.name) return rt.name === 'workspace_id';
      const fields = (rt?.val?.ColumnRef?.fields as Node[] | undefined)?.map((x) => (x.A_Star ? '*' : x.String?.sval));
      if (!fields) return false;
      const last = fields[fields.length - 1];
      if (last === 'workspace_id') return true;
      if (last === '*') return inner.some((r) => r.scoped && (fields.length === 1 || r.alias === fields[0]));
      return false;
    });

  /** Relations of a FROM item; analyses subqueries found there and collects ON equalities. */
  const fromItem = (n: Node, rels: Rel[], eqs: Array<[string, string]>, outer: Scope, sublinks: Node[]) => {
    const k = kind(n);
    if (k === 'RangeVar') {
      const name: string = n.RangeVar.relname;
      const alias: string = n.RangeVar.alias?.aliasname ?? name;
      const scoped = ctes.has(name) ? ctes.get(name)! : schema.columns.get(name)?.has('workspace_id') ?? false;
      rels.push({ alias, table: name, scoped });
    } else if (k === 'JoinExpr') {
      fromItem(n.JoinExpr.larg, rels, eqs, outer, sublinks);
      fromItem(n.JoinExpr.rarg, rels, eqs, outer, sublinks);
      if (n.JoinExpr.quals) {
        eqs.push(...equalities(n.JoinExpr.quals, rels));
        sublinks.push(n.JoinExpr.quals);
      }
    } else if (k === 'RangeSubselect') {
      const alias: string = n.RangeSubselect.alias?.aliasname ?? '?subquery';
      const ctx = n.RangeSubselect.lateral ? { rels: [...outer.rels, ...rels], eqs: [...outer.eqs, ...eqs] } : { rels: [], eqs: [] };
      const inner = statement(n.RangeSubselect.subquery, ctx);
      rels.push({ alias, table: alias, scoped: inner });
    } else if (k === 'RangeFunction') {
      rels.push({ alias: n.RangeFunction.alias?.aliasname ?? '?function', table: '?function', scoped: false });
    }
  };

  /** Every SubLink (EXISTS, IN, scalar subquery) under a node, not descending into them. */
  const findSublinks = (n: unknown, found: Node[]) => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) return n.forEach((x) => findSublinks(x, found));
    const o = n as Node;
    if (o.SubLink) return void found.push(o.SubLink);
    for (const v of Object.values(o)) findSublinks(v, found);
  };

  /** Analyses one query level; returns whether it exposes a workspace_id column. */
  function level(own: Rel[], ownEqs: Array<[string, string]>, where: Node | undefined, outer: Scope, exprs: unknown[], targets: Node[] | undefined): boolean {
    const all = [...own, ...outer.rels];
    const eqs = [...ownEqs, ...equalities(where, all), ...outer.eqs];
    // Union-find over terms.
    const parent = new Map<string, string>();
    const find = (x: string): string => {
      const p = parent.get(x);
      if (p === undefined || p === x) return x;
      const r = find(p);
      parent.set(x, r);
      return r;
    };
    for (const [a, b] of eqs) parent.set(find(a), find(b));
    const scoped = all.filter((r) => r.scoped);
    for (const r of own.filter((x) => x.scoped)) {
      for (const s of scoped) {
        if (s === r || (own.includes(s) && own.indexOf(s) < own.indexOf(r))) continue;
        if (find(`${r.alias}.workspace_id`) !== find(`${s.alias}.workspace_id`)) out.push({ pair: [r.table, s.table].sort().join('~'), sql: stmt.sql });
      }
    }
    const subs: Node[] = [];
    findSublinks([where, ...exprs], subs);
    const scope: Scope = { rels: all, eqs };
    for (const s of subs) {
      statement(s.subselect, scope);
    }
    return exposesWorkspace(targets, own);
  }

  function withClause(w: Node | undefined) {
    for (const c of (w?.ctes as Node[] | undefined) ?? []) {
      const cte = c.CommonTableExpr;
      ctes.set(cte.ctename, statement(cte.ctequery, { rels: [], eqs: [] }));
    }
  }

  function statement(n: Node | undefined, outer: Scope): boolean {
    const k = kind(n);
    if (!n || !k) return false;
    const s = n[k];
    if (k === 'SelectStmt') {
      withClause(s.withClause);
      if (s.op && s.op !== 'SETOP_NONE') {
        const l = statement({ SelectStmt: s.larg }, outer);
        const r = statement({ SelectStmt: s.rarg }, outer);
        return l || r;
      }
      const rels: Rel[] = [];
      const eqs: Array<[string, string]> = [];
      const subs: Node[] = [];
      for (const f of (s.fromClause as Node[] | undefined) ?? []) fromItem(f, rels, eqs, outer, subs);
      return level(rels, eqs, s.whereClause, outer, [subs, s.targetList, s.havingClause, s.sortClause, s.valuesLists], s.targetList);
    }
    if (k === 'UpdateStmt' || k === 'DeleteStmt') {
      withClause(s.withClause);
      const rels: Rel[] = [];
      const eqs: Array<[string, string]> = [];
      const subs: Node[] = [];
      fromItem({ RangeVar: s.relation }, rels, eqs, outer, subs);
      for (const f of ((k === 'UpdateStmt' ? s.fromClause : s.usingClause) as Node[] | undefined) ?? []) fromItem(f, rels, eqs, outer, subs);
      return level(rels, eqs, s.whereClause, outer, [subs, s.targetList], s.returningList);
    }
    if (k === 'InsertStmt') {
      withClause(s.withClause);
      statement(s.selectStmt, { rels: [], eqs: [] });
      const target = schema.columns.get(s.relation.relname)?.has('workspace_id') ?? false;
      return target && exposesWorkspace(s.returningList, [{ alias: s.relation.relname, table: s.relation.relname, scoped: true }]);
    }
    if (k === 'ExplainStmt') return statement(s.query, outer);
    return false;
  }

  for (const st of parsed.stmts as Node[]) statement(st.stmt, { rels: [], eqs: [] });
  // One statement can repeat a pair (a subquery seen from two levels): report each pair once.
  return out.filter((v, i) => out.findIndex((w) => w.pair === v.pair) === i);
}
