import { ensureDatabase, createDb, migrateLatest } from '../src/db';
import { createWorkspace } from '../src/workspaces/repo';
import { loadHistory } from '../src/predictions/history';
import { gridCuts, validateWorkspace } from '../src/predictions/fit';
import { fitWorkspace, scoreWorkspace } from '../src/predictions/service';
import { membersQuery } from '../src/segments/service';
import { putRules } from '../src/scoring/service';
import { Bench, BenchContext, Metric } from './harness';

/**
 * npm run bench -- predictions [--scale small|full]
 * On its own database (hark_bench_predictions), one workspace of N customers (1,000,000 at full)
 * with purchase histories drawn from a BG/NBD-like process, loaded set-based in SQL. Measures:
 *  - fit: the one pass over purchases seen from the grid of cut-offs (asOf and every 30 days back to 270), the
 *    MBG/NBD fits at each, Gamma-Gamma, the churn model's training on the 90 days before asOf and its
 *    validation one step back; baseline: the history query alone (the read any fit must do);
 *  - fit + scoring: the whole nightly work for the workspace (target < 90 s at 1M), and the peak RSS;
 *  - POST /v1/predictions/validate's work for a cut-off 90 days back;
 *  - scoring: writing pAlive, churnRisk, expected purchases and spend for every customer; baseline:
 *    one bare UPDATE touching the same rows (the write ceiling);
 *  - a segment count on churnRisk; baseline: the same count on totalSpent (another stat field);
 *  - lead scores: PUT of three rules, every customer re-scored in one statement.
 */
const BENCH_DB = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_predictions';
const SCALES = { small: { customers: 20_000 }, full: { customers: 1_000_000 } } as const;
const AS_OF = new Date('2026-01-01T00:00:00Z');

const time = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const v = await f();
  return [v, performance.now() - t0];
};

async function load(db: ReturnType<typeof createDb>, ws: string, n: number) {
  await db.raw(`INSERT INTO customers (workspace_id, external_id) SELECT ?, 'c' || g FROM generate_series(1, ?) g`, [ws, n]);
  // Per customer: a purchase rate, a drop-out after each purchase with probability p, a start in
  // the year before AS_OF; then exponential gaps until drop-out or AS_OF (at most 40 purchases).
  await db.raw(
    `INSERT INTO purchases (workspace_id, customer_id, order_id, occurred_at, total)
     SELECT ?, c.id, 'o' || c.id || '-' || k, ?::timestamptz - (c.start_days - c.gap * k) * interval '1 day', round((20 + random() * 80)::numeric, 2)
     FROM (SELECT id, 365 * random() AS start_days, 5 + 60 * random() AS gap, 1 + floor(random() * random() * 12)::int AS life
           FROM customers WHERE workspace_id = ?) c
     CROSS JOIN LATERAL generate_series(0, c.life - 1) k
     WHERE c.start_days - c.gap * k > 0`,
    [ws, AS_OF, ws],
  );
  await db.raw(
    `INSERT INTO customer_stats (customer_id, workspace_id, purchase_count, total_spent, first_purchase_at, last_purchase_at)
     SELECT c.id, ?, count(p.id), coalesce(sum(p.total), 0), min(p.occurred_at), max(p.occurred_at)
     FROM customers c LEFT JOIN purchases p ON p.customer_id = c.id WHERE c.workspace_id = ? GROUP BY c.id`,
    [ws, ws],
  );
  await db.raw('ANALYZE customers; ANALYZE purchases; ANALYZE customer_stats');
}

export const bench: Bench = {
  description: 'MBG/NBD + Gamma-Gamma + churn model fit with validation, scoring every customer, churnRisk segment count, lead scores',
  async run(ctx: BenchContext): Promise<Metric[]> {
    const { customers } = SCALES[ctx.scale];
    await ensureDatabase(BENCH_DB);
    const db = createDb(BENCH_DB, 4);
    try {
      await migrateLatest(db);
      await db.raw('TRUNCATE workspaces CASCADE');
      const ws = (await createWorkspace(db, { name: 'bench' })).id as string;
      const [, loadMs] = await time(() => load(db, ws, customers));
      ctx.log(`loaded ${customers} customers in ${(loadMs / 1000).toFixed(1)} s`);

      const DAY = 86_400_000;
      const [, summaryMs] = await time(() => loadHistory(db, ws, AS_OF, gridCuts(AS_OF)));
      const [{ fit, summary }, fitMs] = await time(() => fitWorkspace(db, ws, AS_OF, 'day', new Date()));
      ctx.log(`fit ${fit.model} ${JSON.stringify(fit.params)} spend ${JSON.stringify(fit.spend_params)}`);
      ctx.log(`churn ${fit.churn?.kind} ${fit.churn?.reason ?? ''}; validation ${JSON.stringify({ ...fit.validation, calibration: undefined })}`);
      const [, bareMs] = await time(() => db('customer_stats').where({ workspace_id: ws }).update({ scored_at: db.raw('scored_at') }));
      const [scored, scoreMs] = await time(() => scoreWorkspace(db, fit, summary, new Date()));
      await db.raw('ANALYZE customer_stats');
      const [validation, validateMs] = await time(() => validateWorkspace(db, ws, new Date(AS_OF.getTime() - 90 * DAY), undefined, 'day', 'mbg-nbd', AS_OF));
      ctx.log(`validate: churnAuc ${validation.churnAuc} recencyAuc ${validation.recencyAuc} brier ${validation.brier} base ${validation.baseRateBrier}`);
      const rssMb = process.resourceUsage().maxRSS / 1024;
      ctx.log(`peak RSS ${rssMb.toFixed(0)} MB`);

      const count = async (node: object) => Number((await db.from(membersQuery(db, ws, node as never, AS_OF).as('m')).count({ n: '*' }))[0]!.n);
      await count({ field: 'churnRisk', op: 'gt', value: 0.5 }); // warm
      const [churners, churnMs] = await time(() => count({ field: 'churnRisk', op: 'gt', value: 0.5 }));
      const [, spentMs] = await time(() => count({ field: 'totalSpent', op: 'gt', value: 150 }));
      const [, presetMs] = await time(() => count({ preset: 'likelyToChurn' }));
      ctx.log(`scored ${scored}; churnRisk > 0.5: ${churners}`);

      const rules = [
        { name: 'repeat', points: 20, when: { field: 'purchaseCount', op: 'gte', value: 3 } },
        { name: 'spender', points: 15, when: { field: 'totalSpent', op: 'gte', value: 200 } },
        { name: 'slipping', points: -30, when: { preset: 'likelyToChurn' } },
      ];
      const [, leadMs] = await time(() => putRules(db, ws, { rules }, new Date()));

      // The time targets are for 1,000,000 customers: judged only at full scale.
      const full = ctx.scale === 'full';
      return [
        { name: `fit (${customers} customers)`, value: fitMs / 1000, unit: 's', baseline: { name: `history query alone (${gridCuts(AS_OF).length} cut-offs)`, value: summaryMs / 1000 }, ...(full ? { target: { text: '< 60 s', met: fitMs < 60_000 } } : {}) },
        { name: `scoring (${scored} customers)`, value: scoreMs / 1000, unit: 's', baseline: { name: 'bare UPDATE of the same rows', value: bareMs / 1000 }, ...(full ? { target: { text: '< 60 s', met: scoreMs < 60_000 } } : {}) },
        { name: 'fit + training + validation + scoring', value: (fitMs + scoreMs) / 1000, unit: 's', baseline: { name: 'history query alone', value: summaryMs / 1000 }, ...(full ? { target: { text: '< 90 s', met: fitMs + scoreMs < 90_000 } } : {}) },
        { name: 'POST /v1/predictions/validate (cut-off 90 days back)', value: validateMs / 1000, unit: 's', baseline: { name: 'history query alone', value: summaryMs / 1000 } },
        { name: 'peak RSS of the bench process', value: Math.round(rssMb), unit: 'MB' },
        { name: 'count churnRisk > 0.5', value: churnMs, unit: 'ms', baseline: { name: 'count totalSpent > 150', value: spentMs }, target: { text: '< 1000 ms', met: churnMs < 1000 } },
        { name: 'count preset likelyToChurn', value: presetMs, unit: 'ms', baseline: { name: 'count totalSpent > 150', value: spentMs }, target: { text: '< 1000 ms', met: presetMs < 1000 } },
        { name: 'lead scores: PUT 3 rules, all customers', value: leadMs / 1000, unit: 's', baseline: { name: 'bare UPDATE of the same rows', value: bareMs / 1000 } },
      ];
    } finally {
      await db.destroy();
    }
  },
};
