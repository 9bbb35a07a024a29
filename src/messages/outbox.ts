import type { Knex } from 'knex';
import { getWorkspace } from '../workspaces/repo';
import { evaluateRules } from './rules';

export interface AutomationMessageArgs {
  workspaceId: string;
  automationId: string;
  enrollmentId: string;
  stepIndex: number;
  customerId: string;
  channel: 'email' | 'sms';
  templateId: string;
  now: Date;
}

export interface EnqueuedMessage {
  messageId: string;
  status: 'queued' | 'skipped';
  skipReason?: string;
}

/**
 * Writes one automation message into the outbox in the caller's transaction, through the same
 * sending rules as campaigns: a skipped row carries its reason, a row due inside quiet hours
 * gets send_after. Idempotent on (enrollment_id, step_index): a second call returns the row the
 * first one wrote. Dispatch picks the row up (requestDispatch after commit, or the sweeper).
 */
/**
 * A step's period (messages' partition key, migrations/0022): its enrollment's entry month, so all
 * steps of one enrollment share it and (enrollment_id, step_index, period) is as unique as
 * (enrollment_id, step_index). entered_at is written with the enrollment and never changed.
 */
const enrollmentPeriod = (trx: Knex.Transaction, a: AutomationMessageArgs) =>
  trx.raw(
    `coalesce((SELECT date_trunc('month', e.entered_at AT TIME ZONE 'UTC')::date FROM automation_enrollments e WHERE e.id = ?::bigint),
              date_trunc('month', ?::timestamptz AT TIME ZONE 'UTC')::date)`,
    [a.enrollmentId, a.now],
  );

export async function enqueueAutomationMessage(trx: Knex.Transaction, args: AutomationMessageArgs): Promise<EnqueuedMessage> {
  const existing = await findByEnrollmentStep(trx, args.enrollmentId, args.stepIndex);
  if (existing) return existing;
  const workspace = await getWorkspace(trx, args.workspaceId);
  const verdict = (await evaluateRules(trx, workspace, [{ key: 'm', customerId: args.customerId, channel: args.channel }], args.now, { planned: true })).get('m')!;
  const base = {
    workspace_id: args.workspaceId,
    automation_id: args.automationId,
    enrollment_id: args.enrollmentId,
    step_index: args.stepIndex,
    customer_id: args.customerId,
    channel: args.channel,
    template_id: args.templateId,
    created_at: args.now,
    period: enrollmentPeriod(trx, args),
  };
  const row =
    verdict.action === 'skip'
      ? { ...base, status: 'skipped', skip_reason: verdict.reason }
      : verdict.action === 'defer'
        ? { ...base, status: 'queued', address: verdict.address, send_after: verdict.until, quiet_deferred: true }
        : { ...base, status: 'queued', address: verdict.address };
  const inserted = await trx('messages')
    .insert(row)
    .onConflict(trx.raw('(enrollment_id, step_index, period) WHERE enrollment_id IS NOT NULL'))
    .ignore()
    .returning(['id', 'status', 'skip_reason']);
  if (inserted.length) return view(inserted[0]);
  // A concurrent call won the race: its row is the answer.
  return (await findByEnrollmentStep(trx, args.enrollmentId, args.stepIndex))!;
}

async function findByEnrollmentStep(trx: Knex.Transaction, enrollmentId: string, stepIndex: number): Promise<EnqueuedMessage | null> {
  const row = await trx('messages').where({ enrollment_id: enrollmentId, step_index: stepIndex }).first('id', 'status', 'skip_reason');
  return row ? view(row) : null;
}

function view(r: { id: string; status: string; skip_reason: string | null }): EnqueuedMessage {
  // Rows an automation wrote are queued or skipped; later states (sent...) read as queued work done.
  const status = r.status === 'skipped' ? 'skipped' : 'queued';
  return { messageId: String(r.id), status, ...(r.skip_reason ? { skipReason: r.skip_reason } : {}) };
}

/**
 * The set form of enqueueAutomationMessage, for an automation walking thousands of entries at
 * once (added by the automations work): one rules evaluation per workspace and one insert for the
 * batch instead of a handful of queries per message. Same rules, same idempotency on
 * (enrollment_id, step_index); results come back in the order of `list`.
 */
export async function enqueueAutomationMessages(trx: Knex.Transaction, list: AutomationMessageArgs[]): Promise<EnqueuedMessage[]> {
  if (!list.length) return [];
  const key = (a: { enrollmentId: string; stepIndex: number }) => `${a.enrollmentId}:${a.stepIndex}`;
  const found = new Map<string, EnqueuedMessage>();
  const lookup = async () => {
    const rows = await trx('messages')
      .whereRaw('(enrollment_id, step_index) IN (SELECT * FROM unnest(?::bigint[], ?::int[]))', [list.map((a) => a.enrollmentId), list.map((a) => a.stepIndex)] as unknown as Knex.RawBinding[])
      .select('id', 'status', 'skip_reason', 'enrollment_id', 'step_index');
    for (const r of rows) found.set(key({ enrollmentId: String(r.enrollment_id), stepIndex: r.step_index }), view(r));
  };
  await lookup();
  const todo = list.filter((a) => !found.has(key(a)));
  const byWorkspace = new Map<string, AutomationMessageArgs[]>();
  for (const a of todo) byWorkspace.set(a.workspaceId, [...(byWorkspace.get(a.workspaceId) ?? []), a]);
  const rows: Array<Record<string, unknown>> = [];
  for (const [workspaceId, items] of byWorkspace) {
    const workspace = await getWorkspace(trx, workspaceId);
    const now = items[0]!.now;
    const verdicts = await evaluateRules(trx, workspace, items.map((a) => ({ key: key(a), customerId: a.customerId, channel: a.channel })), now, { planned: true });
    for (const a of items) {
      const verdict = verdicts.get(key(a))!;
      const base = { workspace_id: a.workspaceId, automation_id: a.automationId, enrollment_id: a.enrollmentId, step_index: a.stepIndex, customer_id: a.customerId, channel: a.channel, template_id: a.templateId, created_at: a.now, period: enrollmentPeriod(trx, a) };
      rows.push(
        verdict.action === 'skip'
          ? { ...base, status: 'skipped', skip_reason: verdict.reason }
          : verdict.action === 'defer'
            ? { ...base, status: 'queued', address: verdict.address, send_after: verdict.until, quiet_deferred: true }
            : { ...base, status: 'queued', address: verdict.address },
      );
    }
  }
  for (let i = 0; i < rows.length; i += 2000) {
    await trx('messages')
      .insert(rows.slice(i, i + 2000))
      .onConflict(trx.raw('(enrollment_id, step_index, period) WHERE enrollment_id IS NOT NULL'))
      .ignore();
  }
  if (rows.length) await lookup();
  return list.map((a) => found.get(key(a))!);
}
