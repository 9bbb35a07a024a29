import type { ErrorDetail } from '../api';
import type { FieldInfo, Node, PresetInfo, Segment } from '../types';
import { useId } from '../ui';

/** A node's place in the tree, as the API names it in a 422: ["all", 0, "field"]. */
export type Path = Array<string | number>;

/** "definition.all[0].field" / "/definition/all/0/field" -> ["all", 0, "field"]. */
export function parsePath(p: string | undefined): Path {
  const parts = (p ?? '').split(/[.[\]/]+/).filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  return parts[0] === 'definition' ? parts.slice(1) : parts;
}

const startsWith = (a: Path, prefix: Path) => prefix.every((p, i) => a[i] === p);

/** Errors a node shows: those whose path starts with its own and that no child node claims. */
function errorsAt(path: Path, errors: Array<{ path: Path; message: string }>, childPaths: Path[]) {
  return errors.filter((e) => startsWith(e.path, path) && !childPaths.some((c) => startsWith(e.path, c)));
}

export interface BuilderProps {
  node: Node;
  onChange: (n: Node) => void;
  fields: FieldInfo[];
  presets: PresetInfo[];
  segments: Segment[];
  errors: ErrorDetail[];
}

const TEMPLATES: Record<string, () => Node> = {
  condition: () => ({ field: 'city', op: 'eq', value: '' }),
  group: () => ({ all: [] }),
  preset: () => ({ preset: 'fading' }),
  purchased: () => ({ purchased: { withinDays: 90 } }),
  event: () => ({ event: { type: 'store_visit', withinDays: 30 } }),
  segment: () => ({ segment: '' }),
};

export function RuleBuilder(props: BuilderProps) {
  const errors = props.errors.map((e) => ({ path: parsePath(e.path), message: e.message ?? '' }));
  return <NodeEditor {...props} path={[]} errs={errors} onRemove={undefined} />;
}

type Inner = BuilderProps & { path: Path; errs: Array<{ path: Path; message: string }>; onRemove?: () => void };

function NodeEditor(p: Inner) {
  const { node, onChange, path } = p;
  const kind = 'all' in node ? 'all' : 'any' in node ? 'any' : 'not' in node ? 'not' : 'preset' in node ? 'preset' : 'purchased' in node ? 'purchased' : 'event' in node ? 'event' : 'segment' in node ? 'segment' : 'condition';
  const children: Node[] = kind === 'all' || kind === 'any' ? ((node[kind] as Node[]) ?? []) : [];
  const childPaths: Path[] = kind === 'not' ? [[...path, 'not']] : children.map((_, i) => [...path, kind, i]);
  const mine = errorsAt(path, p.errs, childPaths);
  const label = path.length ? `Rule ${path.filter((x) => typeof x === 'number').map((n) => Number(n) + 1).join('.')}` : 'Root rule';
  const sub = (child: Node, i: number) => (
    <NodeEditor
      {...p}
      node={child}
      path={[...path, kind, i]}
      onChange={(n) => onChange({ [kind]: children.map((c, j) => (j === i ? n : c)) })}
      onRemove={() => onChange({ [kind]: children.filter((_, j) => j !== i) })}
    />
  );
  return (
    <div class={`node${mine.length ? ' invalid' : ''}`} role="group" aria-label={label} data-path={path.join('.')}>
      <div class="row">
        {(kind === 'all' || kind === 'any') && (
          <Sel label={`${label}: match`} value={kind} options={[['all', 'all of (AND)'], ['any', 'any of (OR)']]} onChange={(v) => onChange({ [v]: children })} />
        )}
        {kind === 'not' && <strong>NOT</strong>}
        {kind === 'condition' && <ConditionEditor {...p} label={label} />}
        {kind === 'preset' && (
          <Sel label={`${label}: preset`} value={String(node.preset)} options={p.presets.map((x) => [x.name, x.name])} onChange={(v) => onChange({ preset: v })} />
        )}
        {kind === 'preset' && <small class="muted">{p.presets.find((x) => x.name === node.preset)?.description}</small>}
        {kind === 'segment' && (
          <Sel label={`${label}: in segment`} value={String(node.segment)} options={[['', '(choose)'], ...p.segments.map((s) => [s.id, s.name] as [string, string])]} onChange={(v) => onChange({ segment: v })} />
        )}
        {(kind === 'purchased' || kind === 'event') && <ObjectEditor {...p} kind={kind} label={label} />}
        {kind !== 'not' && (
          <button type="button" class="secondary" onClick={() => onChange({ not: node })} aria-label={`${label}: negate`}>
            Not
          </button>
        )}
        {kind === 'not' && (
          <button type="button" class="secondary" onClick={() => onChange(node.not as Node)} aria-label={`${label}: remove negation`}>
            Un-negate
          </button>
        )}
        {p.onRemove && (
          <button type="button" class="secondary" onClick={p.onRemove} aria-label={`${label}: remove`}>
            Remove
          </button>
        )}
      </div>
      {mine.map((e) => (
        <div class="error" role="alert">{e.message}</div>
      ))}
      {kind === 'not' && <NodeEditor {...p} node={node.not as Node} path={[...path, 'not']} onChange={(n) => onChange({ not: n })} onRemove={undefined} />}
      {children.map(sub)}
      {(kind === 'all' || kind === 'any') && (
        <div class="row">
          {Object.keys(TEMPLATES).map((t) => (
            <button type="button" class="secondary" onClick={() => onChange({ [kind]: [...children, TEMPLATES[t]()] })} aria-label={`${label}: add ${t}`}>
              + {t}
            </button>
          ))}
        </div>
      )}
    </div>
  );
}

function Sel(p: { label: string; value: string; options: Array<[string, string]>; onChange: (v: string) => void }) {
  const id = useId('s');
  return (
    <span class="field">
      <label for={id} class="muted">{p.label.replace(/^.*: /, '')}</label>
      <select id={id} aria-label={p.label} value={p.value} onChange={(e) => p.onChange(e.currentTarget.value)}>
        {p.options.map(([v, l]) => (
          <option value={v}>{l}</option>
        ))}
      </select>
    </span>
  );
}

function Input(p: { label: string; value: string; onInput: (v: string) => void }) {
  const id = useId('i');
  return (
    <span class="field">
      <label for={id} class="muted">{p.label.replace(/^.*: /, '')}</label>
      <input id={id} aria-label={p.label} value={p.value} onInput={(e) => p.onInput(e.currentTarget.value)} />
    </span>
  );
}

function ConditionEditor(p: Inner & { label: string }) {
  const field = String(p.node.field ?? '');
  const op = String(p.node.op ?? 'eq');
  const info = p.fields.find((f) => f.name === field) ?? (field.startsWith('attributes.') ? { name: field, type: 'attribute', ops: p.fields.find((f) => f.name.startsWith('attributes.'))?.ops ?? ['eq', 'neq', 'exists', 'notExists'] } : undefined);
  const numeric = info?.type === 'number';
  const conv = (s: string): unknown => (numeric && s.trim() !== '' && !Number.isNaN(Number(s)) ? Number(s) : s);
  const value = p.node.value;
  const set = (patch: Node) => {
    const next = { ...p.node, ...patch };
    if (next.op === 'exists' || next.op === 'notExists') delete next.value;
    p.onChange(next);
  };
  const fieldOptions: Array<[string, string]> = p.fields.map((f) => [f.name, f.name]);
  if (field && !p.fields.some((f) => f.name === field)) fieldOptions.unshift([field, field]);
  return (
    <>
      <Sel label={`${p.label}: field`} value={field} options={fieldOptions} onChange={(v) => set({ field: v })} />
      <Sel label={`${p.label}: operator`} value={op} options={(info?.ops ?? [op]).map((o) => [o, o])} onChange={(v) => set({ op: v, ...(v === 'between' ? { value: [0, 0] } : {}) })} />
      {op === 'between' ? (
        <>
          <Input label={`${p.label}: from`} value={String((value as unknown[])?.[0] ?? '')} onInput={(v) => set({ value: [conv(v), (value as unknown[])?.[1] ?? null] })} />
          <Input label={`${p.label}: to`} value={String((value as unknown[])?.[1] ?? '')} onInput={(v) => set({ value: [(value as unknown[])?.[0] ?? null, conv(v)] })} />
        </>
      ) : op === 'in' || op === 'notIn' ? (
        <Input label={`${p.label}: values (comma-separated)`} value={Array.isArray(value) ? value.join(', ') : String(value ?? '')} onInput={(v) => set({ value: v.split(',').map((s) => conv(s.trim())).filter((s) => s !== '') })} />
      ) : op === 'exists' || op === 'notExists' ? null : (
        <Input label={`${p.label}: value`} value={String(value ?? '')} onInput={(v) => set({ value: conv(v) })} />
      )}
    </>
  );
}

/** purchased / event: a few optional keys, numbers where the API wants numbers. */
function ObjectEditor(p: Inner & { kind: 'purchased' | 'event'; label: string }) {
  const obj = (p.node[p.kind] ?? {}) as Record<string, unknown>;
  const keys = p.kind === 'purchased' ? ['category', 'brand', 'sku', 'withinDays', 'minCount', 'minSpent'] : ['type', 'withinDays', 'minCount', 'channel'];
  const numeric = new Set(['withinDays', 'minCount', 'minSpent']);
  const set = (k: string, v: string) => {
    const next = { ...obj };
    if (v.trim() === '') delete next[k];
    else next[k] = numeric.has(k) && !Number.isNaN(Number(v)) ? Number(v) : v;
    p.onChange({ [p.kind]: next });
  };
  return (
    <>
      <strong>{p.kind}</strong>
      {keys.map((k) => (
        <Input label={`${p.label}: ${k}`} value={String(obj[k] ?? '')} onInput={(v) => set(k, v)} />
      ))}
    </>
  );
}
