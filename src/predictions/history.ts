import type { Db } from '../db';
import type { Summary } from './repo';

/**
 * A workspace's purchase history read once and seen from several cut-offs (the fit's asOf, the
 * training cut-off 90 days before, the validation's): one pass over purchases, one row per
 * customer, with per cut-off aggregates. Purchase days are local days in the workspace's timezone;
 * a day counts at a cut-off when its first order was placed by then (the day containing a cut-off
 * is whole on one side: the one approximation, against a second pass per cut-off).
 */
export interface History {
  customerId: string[];
  firstDay: Float64Array; // local day number (days since 2000-01-01) of the first purchase
  firstValue: Float64Array;
  cuts: Array<{
    at: Date;
    day: number; // the cut-off as a fractional local day number
    n: Float64Array; // purchase days up to the cut-off
    lastDay: Float64Array;
    value: Float64Array; // net value of those days
    n90: Float64Array; // purchase days in the 90 days up to the cut-off
  }>;
}

/** One cut-off's view: the customers who had bought by then, as the models take them. */
export interface CutSummary extends Summary {
  index: Int32Array; // row in the History
  total: Float64Array;
  n90: Float64Array;
}

export async function loadHistory(db: Db, workspaceId: string, upTo: Date, cuts: Date[], customerId?: string): Promise<History> {
  const ws = await db('workspaces').where({ id: workspaceId }).first('timezone');
  const tz = ws?.timezone ?? 'UTC';
  const b: Record<string, unknown> = { ws: workspaceId, upTo, tz, cid: customerId ?? null };
  // Column names are generated from the cut-off's position, never from input; the values are bound.
  const cols = cuts
    .map((c, k) => {
      b[`c${k}`] = c;
      // int and float8 arrive as JS numbers; bigint and numeric would be a string per cell (ten
      // cut-offs at a million customers: 40 million strings held at once).
      return `(count(*) FILTER (WHERE at <= :c${k}))::int AS n${k},
        max(day) FILTER (WHERE at <= :c${k}) - DATE '2000-01-01' AS last${k},
        coalesce(sum(value) FILTER (WHERE at <= :c${k}), 0)::float8 AS value${k},
        (count(*) FILTER (WHERE at <= :c${k} AND at > :c${k}::timestamptz - interval '90 days'))::int AS n90_${k}`;
    })
    .join(',\n');
  const sql = `
    WITH days AS (
      SELECT customer_id, (occurred_at AT TIME ZONE :tz)::date AS day, min(occurred_at) AS at, sum(total - refunded) AS value
      FROM purchases
      WHERE workspace_id = :ws AND occurred_at <= :upTo AND NOT (refunded > 0 AND refunded >= total)${customerId === undefined ? '' : ' AND customer_id = :cid'}
      GROUP BY 1, 2
    )
    SELECT customer_id, min(day) - DATE '2000-01-01' AS first_day, (min(ARRAY[day - DATE '2000-01-01', value]))[2]::float8 AS first_value,
      ${cols}
    FROM days GROUP BY customer_id ORDER BY customer_id`;
  const res = await db.raw(sql, b).options({ rowMode: 'array' });
  const rows = res.rows as unknown[][];
  const dayRes = await db.raw(
    `SELECT extract(epoch FROM ((c AT TIME ZONE ?) - TIMESTAMP '2000-01-01')) / 86400.0 AS d FROM unnest(?::timestamptz[]) WITH ORDINALITY AS u(c, k) ORDER BY k`,
    [tz, cuts],
  );
  const n = rows.length;
  const h: History = {
    customerId: new Array(n),
    firstDay: new Float64Array(n),
    firstValue: new Float64Array(n),
    cuts: cuts.map((at, k) => ({ at, day: Number(dayRes.rows[k].d), n: new Float64Array(n), lastDay: new Float64Array(n), value: new Float64Array(n), n90: new Float64Array(n) })),
  };
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    h.customerId[i] = String(r[0]);
    h.firstDay[i] = Number(r[1]);
    h.firstValue[i] = Number(r[2]);
    for (let k = 0; k < cuts.length; k++) {
      const c = h.cuts[k]!;
      const o = 3 + 4 * k;
      c.n[i] = Number(r[o]);
      c.lastDay[i] = r[o + 1] === null ? NaN : Number(r[o + 1]);
      c.value[i] = Number(r[o + 2]);
      c.n90[i] = Number(r[o + 3]);
    }
  }
  return h;
}

/** The customers who had bought by cut-off k, as (x, t_x, T) in days plus spend and recent activity. */
export function summaryAt(h: History, k: number): CutSummary {
  const c = h.cuts[k]!;
  const idx: number[] = [];
  for (let i = 0; i < c.n.length; i++) if (c.n[i]! > 0) idx.push(i);
  const m = idx.length;
  const s: CutSummary = {
    customerId: new Array(m),
    x: new Float64Array(m),
    txDays: new Float64Array(m),
    tDays: new Float64Array(m),
    repeatValue: new Float64Array(m),
    index: Int32Array.from(idx),
    total: new Float64Array(m),
    n90: new Float64Array(m),
  };
  idx.forEach((i, j) => {
    s.customerId[j] = h.customerId[i]!;
    s.x[j] = c.n[i]! - 1;
    s.txDays[j] = c.lastDay[i]! - h.firstDay[i]!;
    s.tDays[j] = Math.max(0, c.day - h.firstDay[i]!);
    s.repeatValue[j] = c.value[i]! - h.firstValue[i]!;
    s.total[j] = c.value[i]!;
    s.n90[j] = c.n90[i]!;
  });
  return s;
}

/** Purchase days each customer of `s` made after cut-off `from` up to cut-off `to`. */
export function purchasesBetween(h: History, s: CutSummary, from: number, to: number): Float64Array {
  const a = h.cuts[from]!.n;
  const b = h.cuts[to]!.n;
  return Float64Array.from(s.index, (i) => b[i]! - a[i]!);
}

/** The customers of `s` at rows `pick`, in that order. */
export function subsetSummary(s: CutSummary, pick: ArrayLike<number>): CutSummary {
  const f = (v: Float64Array) => Float64Array.from(pick, (i) => v[i]!);
  return {
    customerId: Array.from(pick, (i) => s.customerId[i]!),
    x: f(s.x),
    txDays: f(s.txDays),
    tDays: f(s.tDays),
    repeatValue: f(s.repeatValue),
    index: Int32Array.from(pick, (i) => s.index[i]!),
    total: f(s.total),
    n90: f(s.n90),
  };
}
