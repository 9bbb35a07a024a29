import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { ApiKey, Page, Settings } from '../types';
import { ErrorBox, Field, useLoad } from '../ui';

export function SettingsPage(_: { args: string[] }) {
  const [s, err] = useLoad(() => api.get<Settings>('/v1/settings'));
  return (
    <section aria-labelledby="h-settings">
      <h1 id="h-settings">Settings</h1>
      <ErrorBox error={err} />
      {s && <SettingsForm s={s} />}
      <Keys />
    </section>
  );
}

function SettingsForm({ s }: { s: Settings }) {
  const [v, setV] = useState({
    fromEmail: s.fromEmail ?? '', fromName: s.fromName ?? '', replyTo: s.replyTo ?? '', smsFrom: s.smsFrom ?? '', postalAddress: s.postalAddress ?? '', timezone: s.timezone,
    quiet: !!s.quietHours, qStart: s.quietHours?.start ?? '21:00', qEnd: s.quietHours?.end ?? '08:00',
    cap: !!s.frequencyCap, capMax: String(s.frequencyCap?.maxMessages ?? 3), capDays: String(s.frequencyCap?.perDays ?? 7),
  });
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState(false);
  const set = (p: Partial<typeof v>) => (setSaved(false), setV((x) => ({ ...x, ...p })));
  const text = (k: 'fromEmail' | 'fromName' | 'replyTo' | 'smsFrom' | 'timezone', label: string) => (
    <Field label={label}>{(id) => <input id={id} value={v[k]} onInput={(e) => set({ [k]: e.currentTarget.value })} />}</Field>
  );
  const save = async (e: Event) => {
    e.preventDefault();
    const orNull = (x: string) => (x.trim() ? x.trim() : null);
    try {
      await api.patch('/v1/settings', {
        fromEmail: orNull(v.fromEmail), fromName: orNull(v.fromName), replyTo: orNull(v.replyTo), smsFrom: orNull(v.smsFrom),
        postalAddress: orNull(v.postalAddress), timezone: v.timezone,
        quietHours: v.quiet ? { start: v.qStart, end: v.qEnd } : null,
        frequencyCap: v.cap ? { maxMessages: Number(v.capMax), perDays: Number(v.capDays) } : null,
      });
      setError(undefined);
      setSaved(true);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={save} aria-labelledby="h-sender">
      <h2 id="h-sender">Sender and sending rules</h2>
      <div class="cols">
        <div>
          {text('fromEmail', 'From email')}
          {text('fromName', 'From name')}
          {text('replyTo', 'Reply-to')}
          {text('smsFrom', 'SMS sender number')}
          <Field label="Postal address (shown in every email)">{(id) => <textarea id={id} style={{ minHeight: '70px' }} value={v.postalAddress} onInput={(e) => set({ postalAddress: e.currentTarget.value })} />}</Field>
        </div>
        <div>
          {text('timezone', 'Time zone (IANA)')}
          <fieldset>
            <legend>Quiet hours (recipient's local time)</legend>
            <label class="check"><input type="checkbox" checked={v.quiet} onChange={(e) => set({ quiet: e.currentTarget.checked })} /> Hold messages during quiet hours</label>
            <div class="row">
              <Field label="From">{(id) => <input id={id} type="time" disabled={!v.quiet} value={v.qStart} onInput={(e) => set({ qStart: e.currentTarget.value })} />}</Field>
              <Field label="Until">{(id) => <input id={id} type="time" disabled={!v.quiet} value={v.qEnd} onInput={(e) => set({ qEnd: e.currentTarget.value })} />}</Field>
            </div>
          </fieldset>
          <fieldset>
            <legend>Frequency cap</legend>
            <label class="check"><input type="checkbox" checked={v.cap} onChange={(e) => set({ cap: e.currentTarget.checked })} /> Limit messages per customer</label>
            <div class="row">
              <Field label="At most (messages)">{(id) => <input id={id} type="number" min="1" disabled={!v.cap} value={v.capMax} onInput={(e) => set({ capMax: e.currentTarget.value })} />}</Field>
              <Field label="Per (days)">{(id) => <input id={id} type="number" min="1" disabled={!v.cap} value={v.capDays} onInput={(e) => set({ capDays: e.currentTarget.value })} />}</Field>
            </div>
          </fieldset>
        </div>
      </div>
      <button type="submit">Save settings</button> {saved && <span role="status">Saved.</span>}
      <ErrorBox error={error} />
    </form>
  );
}

function Keys() {
  const [keys, err, reload] = useLoad(() => api.get<Page<ApiKey>>('/v1/api-keys'));
  const [name, setName] = useState('');
  const [scope, setScope] = useState('ingest');
  const [shown, setShown] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  useEffect(() => setError(err), [err]);
  const create = async (e: Event) => {
    e.preventDefault();
    try {
      const k = await api.post<ApiKey & { key: string }>('/v1/api-keys', { name, scope: scope as 'admin' | 'ingest' });
      setShown(k.key);
      setName('');
      reload();
    } catch (e2) {
      setError(e2);
    }
  };
  const revoke = async (id: string) => {
    if (!confirm('Revoke this key? Anything using it stops working.')) return;
    try {
      await api.delete(`/v1/api-keys/${enc(id)}`);
      reload();
    } catch (e2) {
      setError(e2);
    }
  };
  const rows = Array.isArray(keys) ? (keys as ApiKey[]) : (keys?.data ?? []);
  return (
    <form class="card" onSubmit={create} aria-labelledby="h-keys">
      <h2 id="h-keys">API keys</h2>
      <table>
        <thead><tr><th scope="col">Name</th><th scope="col">Scope</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((k) => (
            <tr><td>{k.name}</td><td>{k.scope}</td><td><button type="button" class="link" onClick={() => revoke(k.id)}>Revoke {k.name}</button></td></tr>
          ))}
        </tbody>
      </table>
      <div class="row">
        <Field label="Key name">{(id) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
        <Field label="Scope">
          {(id) => (
            <select id={id} value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
              <option value="ingest">ingest (point of sale, site)</option>
              <option value="admin">admin (everything)</option>
            </select>
          )}
        </Field>
        <button type="submit">Create key</button>
      </div>
      {shown && <p role="status">New key (shown once, copy it now): <code>{shown}</code></p>}
      <ErrorBox error={error} />
    </form>
  );
}
