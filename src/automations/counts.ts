import type { Automation } from './schema';

type Figures = {
  enrollments: Array<{ state: string; step_index: number; n: number }>;
  messages: Array<{ step_index: number; status: string; n: number }>;
};

const MESSAGE_BUCKET: Record<string, 'queued' | 'sent' | 'failed' | 'skipped' | 'cancelled'> = {
  queued: 'queued',
  sending: 'queued',
  sent: 'sent',
  delivered: 'sent',
  failed: 'failed',
  unknown: 'failed',
  skipped: 'skipped',
  held_out: 'skipped',
  cancelled: 'cancelled',
};

/**
 * Per-step figures for GET /v1/automations/:id. An enrollment's step_index is the next step to
 * run; one whose previous step is a wait is "at" that wait (waiting out its hours, or leaving
 * during it), otherwise it is at step_index. Per step: entered = reached it; waiting = active and
 * at it; exited/cancelled = left while at it; completed = went past it; queued/sent/failed/skipped
 * /cancelled = its messages by outcome (sent includes delivered).
 */
export function stepCounts(a: Automation, f: Figures) {
  const steps = a.steps.map((s, index) => ({
    index,
    type: s.type,
    entered: 0,
    waiting: 0,
    completed: 0,
    exited: 0,
    cancelled: 0,
    messages: { queued: 0, sent: 0, failed: 0, skipped: 0, cancelled: 0 },
  }));
  const totals = { entered: 0, active: 0, completed: 0, exited: 0, cancelled: 0 };
  for (const { state, step_index: si, n } of f.enrollments) {
    totals.entered += n;
    if (state in totals) totals[state as keyof typeof totals] += n;
    const at = si > 0 && a.steps[si - 1]?.type === 'wait' && state !== 'completed' ? si - 1 : si;
    for (const s of steps) {
      if (s.index <= at || s.index < si) s.entered += n;
      if (s.index < si && s.index !== at) s.completed += n;
    }
    const here = steps[at];
    if (!here) continue;
    if (state === 'active') here.waiting += n;
    if (state === 'exited') here.exited += n;
    if (state === 'cancelled') here.cancelled += n;
  }
  for (const { step_index, status, n } of f.messages) {
    const s = steps[step_index];
    const bucket = MESSAGE_BUCKET[status];
    if (s && bucket) s.messages[bucket] += n;
  }
  return {
    ...totals,
    steps: steps.map(({ messages, ...s }) => ({ ...s, ...messages, sent: messages.sent })),
  };
}
