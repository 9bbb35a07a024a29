import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, enc, type ErrorDetail } from '../api';
import type { FieldInfo, Node, Page, PresetInfo, Preview, Segment } from '../types';
import { ErrorBox, Field, fmt, useLoad } from '../ui';
import { RuleBuilder } from './rule-builder';

const list = <T,>(r: unknown): T[] => (Array.isArray(r) ? r : ((r as { data?: T[] })?.data ?? (r as { fields?: T[] })?.fields ?? (r as { presets?: T[] })?.presets ?? []));

export function Segments(_: { args: string[] }) {
  const [segs, segErr, reload] = useLoad(() => api.get<Page<Segment>>('/v1/segments?limit=200'));
  const [fields] = useLoad(() => api.get<unknown>('/v1/segments/fields').then((r) => list<FieldInfo>(r)));
  const [presets] = useLoad(() => api.get<unknown>('/v1/segments/presets').then((r) => list<PresetInfo>(r)));
  const [counts, setCounts] = useState<Record<string, number>>({});
  const [editing, setEditing] = useState<Segment | null>(null);
  useEffect(() => {
    for (const s of segs?.data ?? []) {
      api.get<{ count: number }>(`/v1/segments/${enc(s.id)}/count`).then((c) => setCounts((m) => ({ ...m, [s.id]: c.count })), () => {});
    }
  }, [segs]);
  return (
    <section aria-labelledby="h-segments">
      <h1 id="h-segments">Segments</h1>
      <ErrorBox error={segErr} />
      <div class="card">
        <table>
          <caption class="muted">Saved segments, counted live</caption>
          <thead><tr><th scope="col">Name</th><th scope="col">Customers</th><th scope="col"><span class="muted">Actions</span></th></tr></thead>
          <tbody>
            {(segs?.data ?? []).map((s) => (
              <tr>
                <td>{s.name}</td>
                <td data-testid={`count-${s.id}`}>{fmt(counts[s.id])}</td>
                <td><button type="button" class="link" onClick={() => setEditing(s)}>Edit {s.name}</button></td>
              </tr>
            ))}
          </tbody>
        </table>
        <button type="button" onClick={() => setEditing({ id: '', name: '', definition: { all: [] } })}>New segment</button>
      </div>
      {editing && (
        <Editor key={editing.id || 'new'} seg={editing} fields={fields ?? []} presets={presets ?? []} segments={segs?.data ?? []} onSaved={() => (reload(), setEditing(null))} />
      )}
      <Explain segments={segs?.data ?? []} />
    </section>
  );
}

function Editor(p: { seg: Segment; fields: FieldInfo[]; presets: PresetInfo[]; segments: Segment[]; onSaved: () => void }) {
  const [name, setName] = useState(p.seg.name);
  const [def, setDef] = useState<Node>((p.seg.definition as Node) ?? { all: [] });
  const [preview, setPreview] = useState<Preview | null>(null);
  const [details, setDetails] = useState<ErrorDetail[]>([]);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const seq = useRef(0);
  // Whether the last edit was typing in a text box: only typing is debounced. A select, a click
  // (add, negate, remove) is one deliberate edit, so its count is asked for at once.
  const typing = useRef(false);
  // Count and sample follow the edits (the target is a count within 300 ms of an edit), and only
  // the latest answer is shown.
  useEffect(() => {
    const mine = ++seq.current;
    setBusy(true);
    const t = setTimeout(() => {
      api.post<Preview>('/v1/segments/preview', { definition: def }).then(
        (r) => mine === seq.current && (setPreview(r), setDetails([]), setError(undefined), setBusy(false)),
        (e) => mine === seq.current && (setDetails(e instanceof ApiError ? e.details : []), setError(e), setBusy(false)),
      );
    }, typing.current ? 120 : 0);
    return () => clearTimeout(t);
  }, [JSON.stringify(def)]);
  const save = async (e: Event) => {
    e.preventDefault();
    try {
      if (p.seg.id) await api.patch(`/v1/segments/${enc(p.seg.id)}`, { name, definition: def });
      else await api.post('/v1/segments', { name, definition: def });
      p.onSaved();
    } catch (err) {
      setError(err);
      setDetails(err instanceof ApiError ? err.details : []);
    }
  };
  return (
    <form
      class="card"
      onSubmit={save}
      aria-labelledby="h-editor"
      onInputCapture={(e) => (typing.current = (e.target as HTMLElement).tagName === 'INPUT')}
      onClickCapture={() => (typing.current = false)}
    >
      <h2 id="h-editor">{p.seg.id ? `Edit ${p.seg.name}` : 'New segment'}</h2>
      <Field label="Segment name">{(id) => <input id={id} required value={name} onInput={(e) => setName(e.currentTarget.value)} />}</Field>
      <div class="cols">
        <div>
          <RuleBuilder node={def} onChange={setDef} fields={p.fields} presets={p.presets} segments={p.segments.filter((s) => s.id !== p.seg.id)} errors={details} />
        </div>
        <div aria-live="polite">
          <div class="muted">Matching customers {busy ? '(updating…)' : ''}</div>
          <div class="big" data-testid="preview-count" data-busy={busy ? '1' : '0'}>{preview ? fmt(preview.count) : '–'}</div>
          {error && !details.length ? <ErrorBox error={error} /> : null}
          {details.length ? <p class="error">The rule has problems: see the marked rules.</p> : null}
          <ul class="muted">
            {(preview?.sample ?? []).map((c) => (
              <li>{[c.firstName, c.lastName].filter(Boolean).join(' ') || c.externalId} {c.city ? `· ${c.city}` : ''}</li>
            ))}
          </ul>
        </div>
      </div>
      <button type="submit">Save segment</button>
    </form>
  );
}

type Explained = Record<string, unknown> & { matched?: boolean };

function Explain({ segments }: { segments: Segment[] }) {
  const [seg, setSeg] = useState('');
  const [ext, setExt] = useState('');
  const [tree, setTree] = useState<Explained | null>(null);
  const [error, setError] = useState<unknown>();
  const go = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    try {
      setTree(await api.get<Explained>(`/v1/segments/${enc(seg)}/explain/${enc(ext)}`));
    } catch (err) {
      setError(err);
      setTree(null);
    }
  };
  return (
    <form class="card" onSubmit={go} aria-labelledby="h-explain">
      <h2 id="h-explain">Explain a customer</h2>
      <div class="row">
        <Field label="Segment">
          {(id) => (
            <select id={id} value={seg} onChange={(e) => setSeg(e.currentTarget.value)} required>
              <option value="">(choose)</option>
              {segments.map((s) => <option value={s.id}>{s.name}</option>)}
            </select>
          )}
        </Field>
        <Field label="Customer external id">{(id) => <input id={id} value={ext} required onInput={(e) => setExt(e.currentTarget.value)} />}</Field>
        <button type="submit">Explain</button>
      </div>
      <ErrorBox error={error} />
      {tree && (
        <div data-testid="explain">
          <p>
            Overall: <span class={`badge ${tree.matched ? 'sent' : 'failed'}`}>{tree.matched ? 'in the segment' : 'not in the segment'}</span>
          </p>
          {tree.tree ? <ExplainNode node={tree.tree as Explained} /> : null}
        </div>
      )}
    </form>
  );
}

function ExplainNode({ node }: { node: Explained }) {
  const { matched, ...rest } = node;
  const kids = (['all', 'any'] as const).flatMap((k) => (Array.isArray(rest[k]) ? (rest[k] as Explained[]) : []));
  const not = (rest.not ?? rest.rule) as Explained | undefined;
  const own = Object.fromEntries(Object.entries(rest).filter(([k]) => !['all', 'any', 'not', 'rule'].includes(k)));
  const cond = typeof own.field === 'string' ? `${own.field} ${own.op ?? ''} ${own.value === undefined ? '' : JSON.stringify(own.value)}` : null;
  const head = 'all' in rest ? 'all of' : 'any' in rest ? 'any of' : 'not' in rest ? 'not' : (cond ?? JSON.stringify(own));
  return (
    <div class="node">
      <span class={`badge ${matched ? 'sent' : 'failed'}`}>{matched ? 'matched' : 'not matched'}</span> <code>{head}</code>
      {not && <ExplainNode node={not} />}
      {kids.map((k) => <ExplainNode node={k} />)}
    </div>
  );
}
