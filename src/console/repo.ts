import type { Db } from '../db';
import { toMoney } from '../db';

const DAYS = 30;

/**
 * Overview figures in one round trip per table. Days are counted in the workspace's time zone, so
 * a shop in Austin sees its evening sales on the right day. All values are bound, nothing typed.
 */
export async function overviewFigures(db: Db, workspaceId: string, now: Date) {
  const ws = await db('workspaces').where({ id: workspaceId }).first('timezone', 'currency');
  const tz: string = ws?.timezone ?? 'UTC';
  const [customers, perDay, campaigns, automations] = await Promise.all([
    db('customers').where({ workspace_id: workspaceId }).count<{ n: string }[]>({ n: '*' }),
    db.raw(
      `SELECT to_char(d.day, 'YYYY-MM-DD') AS day, COALESCE(p.n, 0)::int AS n, COALESCE(p.revenue, 0) AS revenue
         FROM generate_series((?::timestamptz AT TIME ZONE ?)::date - (? - 1), (?::timestamptz AT TIME ZONE ?)::date, interval '1 day') AS d(day)
         LEFT JOIN (SELECT (occurred_at AT TIME ZONE ?)::date AS day, count(*) AS n, sum(total) AS revenue
                      FROM purchases
                     WHERE workspace_id = ? AND occurred_at >= ?::timestamptz - make_interval(days => ?)
                     GROUP BY 1) p ON p.day = d.day::date
        ORDER BY d.day`,
      [now.toISOString(), tz, DAYS, now.toISOString(), tz, tz, workspaceId, now.toISOString(), DAYS + 1],
    ),
    db('campaigns').where({ workspace_id: workspaceId }).groupBy('status').select('status').count<{ status: string; n: string }[]>({ n: '*' }),
    db('automations').where({ workspace_id: workspaceId }).groupBy('enabled').select('enabled').count<{ enabled: boolean; n: string }[]>({ n: '*' }),
  ]);
  const byStatus: Record<string, number> = {};
  for (const row of campaigns) byStatus[row.status] = Number(row.n);
  const auto = { enabled: 0, disabled: 0 };
  for (const row of automations) auto[row.enabled ? 'enabled' : 'disabled'] += Number(row.n);
  return {
    timezone: tz,
    currency: ws?.currency ?? null,
    customers: Number(customers[0]?.n ?? 0),
    purchasesPerDay: (perDay.rows as Array<{ day: string; n: number; revenue: string }>).map((r) => ({ day: r.day, count: r.n, revenue: toMoney(r.revenue) ?? 0 })),
    campaigns: byStatus,
    automations: auto,
  };
}
