import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Campaign, CampaignProblem, Page, Segment, Template } from '../types';
import { SendTest } from '../send-test';
import { ErrorBox, Field, fmt, Progress, useLoad } from '../ui';

export function Campaigns({ args }: { args: string[] }) {
  if (args[0]) return <Detail id={args[0]} />;
  return <List />;
}

function List() {
  const [list, err] = useLoad(() => api.get<Page<Campaign>>('/v1/campaigns?limit=100'));
  return (
    <section aria-labelledby="h-campaigns">
      <h1 id="h-campaigns">Campaigns</h1>
      <ErrorBox error={err} />
      <div class="card">
        <table>
          <thead><tr><th scope="col">Name</th><th scope="col">Channel</th><th scope="col">Status</th></tr></thead>
          <tbody>
            {(list?.data ?? []).map((c) => (
              <tr><td><a href={`#/campaigns/${c.id}`}>{c.name}</a></td><td>{c.channel}</td><td><span class={`badge ${c.status}`}>{c.status}</span></td></tr>
            ))}
          </tbody>
        </table>
      </div>
      <Create />
    </section>
  );
}

function Create() {
  const [segs] = useLoad(() => api.get<Page<Segment>>('/v1/segments?limit=200'));
  const [tpls] = useLoad(() => api.get<Page<Template>>('/v1/templates?limit=200'));
  const [name, setName] = useState('');
  const [channel, setChannel] = useState<'email' | 'sms'>('email');
  const [templateId, setTemplateId] = useState('');
  const [include, setInclude] = useState<string[]>([]);
  const [exclude, setExclude] = useState<string[]>([]);
  const [holdout, setHoldout] = useState('0');
  const [at, setAt] = useState('');
  const [error, setError] = useState<unknown>();
  const toggle = (list: string[], set: (l: string[]) => void, id: string) => set(list.includes(id) ? list.filter((x) => x !== id) : [...list, id]);
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api.post<Campaign>('/v1/campaigns', {
        name, channel, templateId, segmentIds: include,
        ...(exclude.length ? { excludeSegmentIds: exclude } : {}),
        ...(Number(holdout) > 0 ? { holdoutPercent: Number(holdout) } : {}),
        ...(at ? { scheduledAt: new Date(at).toISOString() } : {}),
      });
      location.hash = `#/campaigns/${c.id}`;
    } catch (err) {
      setError(err);
    }
  };
  const templates = (tpls?.data ?? []).filter((t) => t.channel === channel);
  return (
    <form class="card" onSubmit={submit} aria-labelledby="h-new-campaign">
      <h2 id="h-new-campaign">New campaign</h2>
      <div class="cols">
        <div>
          <Field label="Campaign name">{(id) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
          <Field label="Channel">
            {(id) => (
              <select id={id} value={channel} onChange={(e) => (setChannel(e.currentTarget.value as 'email' | 'sms'), setTemplateId(''))}>
                <option value="email">Email</option>
                <option value="sms">SMS</option>
              </select>
            )}
          </Field>
          <Field label="Template">
            {(id) => (
              <select id={id} required value={templateId} onChange={(e) => setTemplateId(e.currentTarget.value)}>
                <option value="">(choose)</option>
                {templates.map((t) => <option value={t.id}>{t.name}</option>)}
              </select>
            )}
          </Field>
          <Field label="Holdout (% of the audience kept as a control group)">{(id) => <input id={id} type="number" min="0" max="50" value={holdout} onInput={(e) => setHoldout(e.currentTarget.value)} />}</Field>
          <Field label="Schedule for (optional; leave empty to send by hand)">{(id) => <input id={id} type="datetime-local" value={at} onInput={(e) => setAt(e.currentTarget.value)} />}</Field>
        </div>
        <div>
          <fieldset>
            <legend>Send to segments</legend>
            {(segs?.data ?? []).map((s) => (
              <label class="check"><input type="checkbox" checked={include.includes(s.id)} onChange={() => toggle(include, setInclude, s.id)} /> {s.name}</label>
            ))}
          </fieldset>
          <fieldset>
            <legend>Exclude segments</legend>
            {(segs?.data ?? []).map((s) => (
              <label class="check"><input type="checkbox" checked={exclude.includes(s.id)} onChange={() => toggle(exclude, setExclude, s.id)} /> {s.name}</label>
            ))}
          </fieldset>
        </div>
      </div>
      <button type="submit">Create campaign</button>
      <ErrorBox error={error} />
    </form>
  );
}

function Detail({ id }: { id: string }) {
  const [c, err, reload] = useLoad(() => api.get<Campaign>(`/v1/campaigns/${enc(id)}`), [id]);
  const [error, setError] = useState<unknown>();
  const [at, setAt] = useState('');
  // Poll while the campaign is moving: the progress bar follows the send.
  useEffect(() => {
    if (!c || !['sending', 'scheduled'].includes(c.status)) return;
    const t = setTimeout(reload, 1000);
    return () => clearTimeout(t);
  }, [c]);
  const act = async (path: string, body?: Record<string, unknown>) => {
    setError(undefined);
    try {
      await api.post(`/v1/campaigns/${enc(id)}/${path}`, body);
      reload();
    } catch (e) {
      setError(e);
    }
  };
  const k = c?.counts ?? {};
  const skipped = Object.values(k.suppressed ?? {}).reduce((a, b) => a + (b ?? 0), 0);
  const done = (k.sent ?? 0) + (k.failed ?? 0) + skipped;
  return (
    <section aria-labelledby="h-campaign">
      <p><a href="#/campaigns">← Campaigns</a></p>
      <h1 id="h-campaign">{c?.name ?? 'Campaign'}</h1>
      <ErrorBox error={err} />
      {c && (
        <div class="card">
          <p>Status: <span class={`badge ${c.status}`} data-testid="campaign-status">{c.status}</span> · {c.channel}</p>
          {c.problems?.length ? <Problems problems={c.problems} /> : null}
          <Progress label="Processed" value={done} max={Math.max(0, (k.targeted ?? 0) - (k.heldOut ?? 0))} />
          <div class="row">
            {c.status === 'draft' && <button type="button" onClick={() => act('send')}>Send now</button>}
            {(c.status === 'draft' || c.status === 'scheduled') && (
              <>
                <Field label="Schedule at">{(fid) => <input id={fid} type="datetime-local" value={at} onInput={(e) => setAt(e.currentTarget.value)} />}</Field>
                <button type="button" class="secondary" disabled={!at} onClick={() => act('schedule', { at: new Date(at).toISOString() })}>Schedule</button>
                <button type="button" class="secondary" onClick={() => act('cancel')}>Cancel campaign</button>
              </>
            )}
            {c.status === 'sending' && <button type="button" class="secondary" onClick={() => act('cancel')}>Cancel campaign</button>}
            <a href={`#/results/${c.id}`}>Results</a>
          </div>
          <ErrorBox error={error} />
          <SendTest path={`/v1/campaigns/${enc(c.id)}/test`} channel={c.channel} label="Send a test of this campaign" />
          <div class="cols">
            <table>
              <caption>Counts</caption>
              <tbody>
                {(['targeted', 'heldOut', 'queued', 'sent', 'delivered', 'failed'] as const).map((n) => (
                  <tr><th scope="row">{n}</th><td data-testid={`count-${n}`}>{fmt(k[n])}</td></tr>
                ))}
              </tbody>
            </table>
            <table>
              <caption>Skipped, by reason</caption>
              <tbody>
                {Object.entries(k.suppressed ?? {}).map(([n, v]) => (
                  <tr><th scope="row">{n}</th><td>{fmt(v)}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </section>
  );
}

/** Why messages do not go out, said in place of a bar that would sit at 0 (campaigns/problems.ts on the server). */
function Problems({ problems }: { problems: CampaignProblem[] }) {
  return (
    <div class="problems" role="alert" data-testid="campaign-problems">
      <h2>This campaign cannot deliver</h2>
      <ul>
        {problems.map((p) => (
          <li>
            <strong>{p.messages.toLocaleString()} message{p.messages === 1 ? '' : 's'}</strong>: {p.message}
            {p.since && <> (since <time dateTime={p.since}>{new Date(p.since).toLocaleString()}</time>)</>} <code>{p.code}</code>
          </li>
        ))}
      </ul>
    </div>
  );
}
