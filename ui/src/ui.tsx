import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError } from './api';

let seq = 0;
/** A stable id to tie a <label> to its control. */
export const useId = (prefix: string) => useState(() => `${prefix}-${++seq}`)[0];

export function Field(props: { label: string; children: (id: string) => ComponentChildren; hint?: string }) {
  const id = useId('f');
  return (
    <div class="field">
      <label for={id}>{props.label}</label>
      {props.children(id)}
      {props.hint && <small>{props.hint}</small>}
    </div>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  const e = error as ApiError;
  return (
    <div class="error" role="alert">
      <strong>{e.code ?? 'error'}</strong> {e.message}
      {e.details?.length ? (
        <ul>
          {e.details.map((d) => (
            <li>
              {d.path ? <code>{d.path}</code> : null} {d.message}
            </li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** Loads once (and again when `deps` change); returns [data, error, reload]. */
export function useLoad<T>(f: () => Promise<T>, deps: unknown[] = []): [T | undefined, unknown, () => void] {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    f().then(
      (d) => live && (setData(d), setError(undefined)),
      (e) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [data, error, () => setTick((t) => t + 1)];
}

export const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n) ? '–' : n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
export const pct = (n: number | null | undefined) => (n === null || n === undefined ? '–' : `${(n * 100).toFixed(1)}%`);

/** Horizontal bars, inline SVG (no chart library: the bundle stays small and CSP-clean). */
export function BarChart({ title, rows }: { title: string; rows: Array<{ label: string; value: number }> }) {
  const max = Math.max(1, ...rows.map((r) => r.value));
  const h = 22;
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg role="img" aria-label={title} viewBox={`0 0 400 ${rows.length * h + 4}`} width="100%" preserveAspectRatio="xMinYMin meet">
        {rows.map((r, i) => (
          <g transform={`translate(0 ${i * h})`}>
            <text x="0" y="15" class="lbl">{r.label.slice(0, 18)}</text>
            <rect x="130" y="3" height="15" width={Math.max(1, (r.value / max) * 210)} class="bar" />
            <text x={136 + (r.value / max) * 210} y="15" class="val">{fmt(r.value, r.value % 1 ? 2 : 0)}</text>
          </g>
        ))}
      </svg>
    </figure>
  );
}

/** Columns over time, inline SVG. */
export function ColumnChart({ title, points }: { title: string; points: Array<{ label: string; value: number }> }) {
  const max = Math.max(1, ...points.map((p) => p.value));
  const w = 600;
  const h = 160;
  const bw = w / Math.max(1, points.length);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <svg role="img" aria-label={title} viewBox={`0 0 ${w} ${h + 20}`} width="100%">
        {points.map((p, i) => {
          const bh = (p.value / max) * h;
          return (
            <rect x={i * bw + 1} y={h - bh} width={Math.max(1, bw - 2)} height={bh} class="bar">
              <title>{`${p.label}: ${p.value}`}</title>
            </rect>
          );
        })}
        <text x="0" y={h + 16} class="lbl">{points[0]?.label}</text>
        <text x={w} y={h + 16} class="lbl" text-anchor="end">{points[points.length - 1]?.label}</text>
        <text x="0" y="12" class="lbl">max {max}</text>
      </svg>
    </figure>
  );
}

export function Progress({ value, max, label }: { value: number; max: number; label: string }) {
  return (
    <div class="progress">
      <label>
        {label}: {fmt(value)} / {fmt(max)}
        <progress value={value} max={Math.max(1, max)} />
      </label>
    </div>
  );
}
