import { useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Automation, Page, Segment, Template } from '../types';
import { ErrorBox, Field, fmt, useLoad } from '../ui';

type StepCount = Record<string, number | string>;
type Counts = { entered?: number; active?: number; completed?: number; exited?: number; steps?: StepCount[] };

export function Automations(_: { args: string[] }) {
  const [list, err, reload] = useLoad(() => api.get<Page<Automation>>('/v1/automations?limit=100'));
  return (
    <section aria-labelledby="h-automations">
      <h1 id="h-automations">Automations</h1>
      <ErrorBox error={err} />
      {(list?.data ?? []).map((a) => <Card key={a.id} id={a.id} onChange={reload} />)}
      <WinBack onCreated={reload} />
    </section>
  );
}

function Card({ id, onChange }: { id: string; onChange: () => void }) {
  const [a, err, reload] = useLoad(() => api.get<Automation & { counts?: Counts }>(`/v1/automations/${enc(id)}`), [id]);
  const [error, setError] = useState<unknown>();
  const run = async (f: () => Promise<unknown>) => {
    try {
      await f();
      reload();
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  if (!a) return <ErrorBox error={err} />;
  const steps = a.counts?.steps ?? [];
  const cols = ['entered', 'waiting', 'completed', 'exited', 'queued', 'sent', 'failed', 'skipped'];
  return (
    <div class="card">
      <h2>{a.name} <span class="badge">{a.enabled ? 'enabled' : 'disabled'}</span></h2>
      <p class="muted">Entered {fmt(a.counts?.entered)} · active {fmt(a.counts?.active)} · completed {fmt(a.counts?.completed)} · exited {fmt(a.counts?.exited)}</p>
      <table>
        <thead><tr><th scope="col">Step</th>{cols.map((c) => <th scope="col">{c}</th>)}</tr></thead>
        <tbody>
          {steps.map((s, i) => {
            const def = a.steps[i] ?? {};
            const what = def.type === 'wait' ? `wait ${def.hours} h` : `send ${def.channel}`;
            return (<tr><td>{i + 1}. {what}</td>{cols.map((c) => <td>{fmt(Number(s[c] ?? 0))}</td>)}</tr>);
          })}
        </tbody>
      </table>
      <div class="row">
        <button type="button" class="secondary" onClick={() => run(() => api.post(`/v1/automations/${enc(id)}/run`))}>Run now</button>
        <button type="button" class="secondary" onClick={() => run(() => api.patch(`/v1/automations/${enc(id)}`, { enabled: !a.enabled }))}>{a.enabled ? 'Disable' : 'Enable'}</button>
      </div>
      <ErrorBox error={error} />
    </div>
  );
}

/** Win-back in five steps: who, first email, how long to wait, the SMS nudge, leave on purchase. */
function WinBack({ onCreated }: { onCreated: () => void }) {
  const [segs] = useLoad(() => api.get<Page<Segment>>('/v1/segments?limit=200'));
  const [tpls] = useLoad(() => api.get<Page<Template>>('/v1/templates?limit=200'));
  const [step, setStep] = useState(0);
  const [v, setV] = useState({ name: 'Win-back', segmentId: '', emailId: '', waitDays: '3', smsId: '', exitOnPurchase: true, enabled: true });
  const [error, setError] = useState<unknown>();
  const set = (p: Partial<typeof v>) => setV((x) => ({ ...x, ...p }));
  const byChannel = (c: string) => (tpls?.data ?? []).filter((t) => t.channel === c);
  const create = async () => {
    try {
      await api.post('/v1/automations', {
        name: v.name,
        trigger: { type: 'segmentEntry', segmentId: v.segmentId },
        steps: [
          { type: 'send' as const, channel: 'email' as const, templateId: v.emailId },
          { type: 'wait' as const, hours: Math.round(Number(v.waitDays) * 24) },
          ...(v.smsId ? [{ type: 'send' as const, channel: 'sms' as const, templateId: v.smsId }] : []),
        ],
        ...(v.exitOnPurchase ? { exitWhen: 'purchased' as const } : {}),
        enabled: v.enabled,
      });
      setStep(0);
      onCreated();
    } catch (e) {
      setError(e);
    }
  };
  const pages = [
    <Field label="1. Segment whose new members enter">
      {(id) => (
        <select id={id} value={v.segmentId} onChange={(e) => set({ segmentId: e.currentTarget.value })}>
          <option value="">(choose)</option>
          {(segs?.data ?? []).map((s) => <option value={s.id}>{s.name}</option>)}
        </select>
      )}
    </Field>,
    <Field label="2. Email sent on entry">
      {(id) => (
        <select id={id} value={v.emailId} onChange={(e) => set({ emailId: e.currentTarget.value })}>
          <option value="">(choose)</option>
          {byChannel('email').map((t) => <option value={t.id}>{t.name}</option>)}
        </select>
      )}
    </Field>,
    <Field label="3. Then wait (days)">{(id) => <input id={id} type="number" min="0" step="0.5" value={v.waitDays} onInput={(e) => set({ waitDays: e.currentTarget.value })} />}</Field>,
    <Field label="4. Then an SMS (optional)">
      {(id) => (
        <select id={id} value={v.smsId} onChange={(e) => set({ smsId: e.currentTarget.value })}>
          <option value="">(none)</option>
          {byChannel('sms').map((t) => <option value={t.id}>{t.name}</option>)}
        </select>
      )}
    </Field>,
    <div>
      <Field label="Name">{(id) => <input id={id} value={v.name} onInput={(e) => set({ name: e.currentTarget.value })} />}</Field>
      <label class="check"><input type="checkbox" checked={v.exitOnPurchase} onChange={(e) => set({ exitOnPurchase: e.currentTarget.checked })} /> 5. Leave the flow when the customer purchases</label>
      <label class="check"><input type="checkbox" checked={v.enabled} onChange={(e) => set({ enabled: e.currentTarget.checked })} /> Enable now</label>
    </div>,
  ];
  const ready = [!!v.segmentId, !!v.emailId, Number(v.waitDays) >= 0, true, !!v.name];
  return (
    <div class="card" role="group" aria-labelledby="h-winback">
      <h2 id="h-winback">Win-back wizard (step {step + 1} of {pages.length})</h2>
      {pages[step]}
      <div class="row">
        <button type="button" class="secondary" disabled={step === 0} onClick={() => setStep(step - 1)}>Back</button>
        {step < pages.length - 1 ? (
          <button type="button" disabled={!ready[step]} onClick={() => setStep(step + 1)}>Next</button>
        ) : (
          <button type="button" disabled={!ready.every(Boolean)} onClick={create}>Create automation</button>
        )}
      </div>
      <ErrorBox error={error} />
    </div>
  );
}
