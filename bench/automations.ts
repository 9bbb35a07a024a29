import { ensureDatabase, createDb, migrateLatest, migrateRollbackAll, Db } from '../src/db';
import { ManualClock } from '../src/clock';
import { createLogger } from '../src/logger';
import { evaluateAutomation } from '../src/automations/entry';
import { processDueEnrollments } from '../src/automations/walker';
import { membersQuery } from '../src/segments/service';
import type { Bench, Metric } from './harness';

/**
 * One scheduled segmentEntry evaluation of the fading win-back flow at scale: N customers, of
 * whom 5% newly become fading between two evaluations. Measured: the evaluation that records
 * every entry and queues every first-step message (target < 60 s at 1M / 50k), and one that
 * finds no new entrant (target < 5 s). Baseline: counting the segment's members once, the least
 * any evaluation must do.
 */
const DAY = 86400_000;
const URL_ = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/hark_bench_automations';

async function seed(db: Db, n: number, now: Date) {
  const [ws] = await db('workspaces')
    .insert({ name: 'bench', timezone: 'UTC', settings: JSON.stringify({ fromEmail: 'shop@example.com', frequencyCap: { maxMessages: 3, perDays: 7 } }) })
    .returning('id');
  const w = ws.id as string;
  await db.raw(
    `INSERT INTO customers (workspace_id, external_id, email, email_consent, created_at, updated_at)
     SELECT ?, 'c' || g, 'c' || g || '@example.com', 'subscribed', ?, ? FROM generate_series(1, ?) g`,
    [w, now, now, n],
  );
  // Regulars: 5 purchases 20 days apart, the last 10 days ago (not fading). 1% are fading already.
  await db.raw(
    `INSERT INTO customer_stats (customer_id, workspace_id, purchase_count, total_spent, first_purchase_at, last_purchase_at)
     SELECT id, workspace_id, 5, 200, ?::timestamptz - (CASE WHEN id % 100 = 0 THEN 170 ELSE 90 END) * interval '1 day',
            ?::timestamptz - (CASE WHEN id % 100 = 0 THEN 90 ELSE 10 END) * interval '1 day'
     FROM customers WHERE workspace_id = ?`,
    [now, now, w],
  );
  await db.raw('ANALYZE customers; ANALYZE customer_stats');
  const [seg] = await db('segments').insert({ workspace_id: w, name: 'fading', kind: 'dynamic', definition: JSON.stringify({ preset: 'fading' }) }).returning('id');
  const [tpl] = await db('templates')
    .insert({ workspace_id: w, name: 'win-back', channel: 'email', subject: 'We miss you', body: '<p>Hi {{ customer.firstName }}</p>', format: 'html' })
    .returning('id');
  const steps = [{ type: 'send', channel: 'email', templateId: tpl.id }, { type: 'wait', hours: 168 }, { type: 'send', channel: 'email', templateId: tpl.id }];
  const [a] = await db('automations')
    .insert({ workspace_id: w, name: 'win-back', trigger_type: 'segmentEntry', segment_id: seg.id, schedule: '0 * * * *', steps: JSON.stringify(steps), exit_when: JSON.stringify('purchased'), enabled: true })
    .returning('id');
  return { workspaceId: w, segmentId: seg.id as string, automationId: a.id as string };
}

export const bench: Bench = {
  description: 'automations: scheduled segmentEntry evaluation (fading win-back) at scale',
  async run(ctx) {
    const n = ctx.scale === 'full' ? 1_000_000 : 100_000;
    await ensureDatabase(URL_);
    const db = createDb(URL_, 10);
    const clock = new ManualClock(new Date('2026-06-01T09:00:00Z'));
    const logger = createLogger('silent');
    try {
      await migrateRollbackAll(db);
      await migrateLatest(db);
      ctx.log(`seeding ${n} customers`);
      const s = await seed(db, n, clock.now());
      const deps = { db, clock, logger };
      const evaluate = async () => {
        const t0 = performance.now();
        const e = await evaluateAutomation(deps, s.automationId);
        const w = await processDueEnrollments(deps, { automationId: s.automationId, batchSize: 5000 });
        return { ms: performance.now() - t0, entered: e.entered, queued: w.queued + w.skipped };
      };
      const first = await evaluate(); // the 1% already fading: the baseline membership
      ctx.log(`first evaluation: ${first.entered} entered in ${first.ms.toFixed(0)} ms`);
      // Time passes: 5% more customers become overdue.
      const newly = n / 20;
      await db.raw(
        `UPDATE customer_stats SET first_purchase_at = first_purchase_at - interval '80 days', last_purchase_at = last_purchase_at - interval '80 days'
         WHERE workspace_id = ? AND customer_id % 100 BETWEEN 1 AND 5`,
        [s.workspaceId],
      );
      await db.raw('ANALYZE customer_stats');
      clock.advance(3600_000);
      const t0 = performance.now();
      const count = await db.count('* as n').from(membersQuery(db, s.workspaceId, { preset: 'fading' }, clock.now()).as('m')).first();
      const countMs = performance.now() - t0;
      const big = await evaluate();
      ctx.log(`evaluation with ${big.entered} new entrants (${big.queued} first-step messages) in ${big.ms.toFixed(0)} ms; members ${count?.n}`);
      clock.advance(3600_000);
      const idle = await evaluate();
      ctx.log(`evaluation with ${idle.entered} new entrants in ${idle.ms.toFixed(0)} ms`);
      const limitNew = ctx.scale === 'full' ? 60_000 : 6_000;
      const limitIdle = ctx.scale === 'full' ? 5_000 : 500;
      const metrics: Metric[] = [
        { name: 'new entrants', value: big.entered, unit: 'customers', target: { text: `= ${newly}`, met: big.entered === newly && big.queued === newly } },
        { name: 'evaluation with new entrants (entries + first-step messages)', value: big.ms, unit: 'ms', baseline: { name: 'count segment members', value: countMs }, target: { text: `< ${limitNew} ms${ctx.scale === 'full' ? '' : ' (small: target/10)'}`, met: big.ms < limitNew } },
        { name: 'evaluation with no new entrant', value: idle.ms, unit: 'ms', baseline: { name: 'count segment members', value: countMs }, target: { text: `< ${limitIdle} ms${ctx.scale === 'full' ? '' : ' (small: target/10)'}`, met: idle.ms < limitIdle && idle.entered === 0 } },
      ];
      return metrics;
    } finally {
      await db.destroy();
    }
  },
};
