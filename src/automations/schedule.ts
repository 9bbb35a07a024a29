import { CronExpressionParser } from 'cron-parser';
import type { Db } from '../db';
import { AppError } from '../errors';
import { QUEUE_NAMES, Queues } from '../queues';
import { enabledSchedules } from './repo';
import { DEFAULT_SCHEDULE } from './schema';

/**
 * Segment-entry evaluations run on BullMQ job schedulers, one per enabled automation, keyed by
 * the automation id. Postgres is the source of truth: the worker re-registers every schedule at
 * boot and removes the schedulers of automations that are gone or disabled.
 */
const schedulerId = (automationId: string) => `automation:${automationId}`;
const MIN_INTERVAL_MS = 60_000;

/** A cron that does not parse, or fires more than once a minute, is a 422 naming `schedule`. */
export function checkCron(expr: string, tz: string): void {
  const fields = expr.trim().split(/\s+/);
  const bad = (message: string) => new AppError('unprocessable', `schedule: ${message}`, [{ path: 'schedule', message }]);
  if (!expr.startsWith('@') && (fields.length < 5 || fields.length > 6)) throw bad('must be a cron expression of 5 or 6 fields');
  try {
    const it = CronExpressionParser.parse(expr, { tz });
    const a = it.next().getTime();
    const b = it.next().getTime();
    if (b - a < MIN_INTERVAL_MS) throw bad('must not fire more than once a minute');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw bad(`does not parse (${(err as Error).message})`);
  }
}

export async function registerSchedule(queues: Queues, a: { id: string; schedule: string | null; timezone: string }): Promise<void> {
  await queues
    .get(QUEUE_NAMES.automations)
    .upsertJobScheduler(schedulerId(a.id), { pattern: a.schedule ?? DEFAULT_SCHEDULE, tz: a.timezone }, { name: 'evaluate', data: { automationId: a.id }, opts: { removeOnComplete: true, removeOnFail: 100 } });
}

export async function removeSchedule(queues: Queues, automationId: string): Promise<void> {
  await queues.get(QUEUE_NAMES.automations).removeJobScheduler(schedulerId(automationId));
}

/** Boot: every enabled segmentEntry automation gets its scheduler; strays are removed. */
export async function syncSchedules(db: Db, queues: Queues): Promise<number> {
  const wanted = await enabledSchedules(db);
  const ids = new Set(wanted.map((a) => schedulerId(a.id)));
  for (const a of wanted) await registerSchedule(queues, a);
  const queue = queues.get(QUEUE_NAMES.automations);
  const strays: string[] = [];
  for (let start = 0; ; start += 500) {
    const page = await queue.getJobSchedulers(start, start + 499);
    for (const s of page) if (s.key.startsWith('automation:') && !ids.has(s.key)) strays.push(s.key);
    if (page.length < 500) break;
  }
  for (const key of strays) await queue.removeJobScheduler(key);
  return wanted.length;
}

/** Asks the automation worker to walk an automation's due steps now (ids only in Redis). */
export async function requestWalk(queues: Queues, automationId?: string): Promise<void> {
  await queues.get(QUEUE_NAMES.automations).add('walk', automationId ? { automationId } : {}, { removeOnComplete: true, removeOnFail: 1000 });
}

export const TICK_SCHEDULER = 'automations-tick';

/** The tick takes in purchases and events for their triggers and walks due steps (waits ending). */
export async function registerTick(queues: Queues, everyMs: number): Promise<void> {
  await queues.get(QUEUE_NAMES.automations).upsertJobScheduler(TICK_SCHEDULER, { every: everyMs }, { name: 'tick', data: {}, opts: { removeOnComplete: true, removeOnFail: 100 } });
}
