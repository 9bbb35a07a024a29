import { useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Campaign, Page, Report } from '../types';
import { BarChart, ErrorBox, Field, fmt, pct, useLoad } from '../ui';

const GROUPS = ['variant', 'segment', 'ageBand', 'city', 'gender'];

export function Results({ args }: { args: string[] }) {
  const [list] = useLoad(() => api.get<Page<Campaign>>('/v1/campaigns?limit=100'));
  const id = args[0] ?? '';
  return (
    <section aria-labelledby="h-results">
      <h1 id="h-results">Results</h1>
      <div class="card">
        <Field label="Campaign">
          {(fid) => (
            <select id={fid} value={id} onChange={(e) => (location.hash = `#/results/${e.currentTarget.value}`)}>
              <option value="">(choose)</option>
              {(list?.data ?? []).map((c) => <option value={c.id}>{c.name}</option>)}
            </select>
          )}
        </Field>
      </div>
      {id && <CampaignReport key={id} id={id} />}
    </section>
  );
}

function CampaignReport({ id }: { id: string }) {
  const [groupBy, setGroupBy] = useState('variant');
  const [r, err] = useLoad(() => api.get<Report>(`/v1/campaigns/${enc(id)}/report?groupBy=${enc(groupBy)}`), [id, groupBy]);
  const rows = r?.rows ?? [];
  const ci = r?.lift?.ci95;
  return (
    <div>
      <div class="card">
        <Field label="Group by">
          {(fid) => (
            <select id={fid} value={groupBy} onChange={(e) => setGroupBy(e.currentTarget.value)}>
              {GROUPS.map((g) => <option value={g}>{g}</option>)}
            </select>
          )}
        </Field>
        <ErrorBox error={err} />
      </div>
      {r && (
        <>
          <div class="grid">
            <div class="card"><BarChart title="Sent by group" rows={rows.map((x) => ({ label: x.group, value: x.sent }))} /></div>
            <div class="card"><BarChart title="Conversions by group" rows={rows.map((x) => ({ label: x.group, value: x.converted }))} /></div>
            <div class="card"><BarChart title="Revenue by group" rows={rows.map((x) => ({ label: x.group, value: x.revenue }))} /></div>
          </div>
          <div class="card" data-testid="lift">
            <h2>Holdout and lift</h2>
            {r.holdout ? (
              <p>
                Holdout: {fmt(r.holdout.customers)} customers, {fmt(r.holdout.converted)} converted ({pct(r.holdout.conversionRate)}), revenue {fmt(r.holdout.revenue, 2)}.
              </p>
            ) : (
              <p class="muted">No holdout group.</p>
            )}
            <p>
              Lift in conversion rate: <strong>{pct(r.lift?.conversionRate)}</strong>
              {ci ? ` (95% interval ${pct(ci[0])} to ${pct(ci[1])})` : ''}
            </p>
            {ci && <LiftBar low={ci[0]} high={ci[1]} point={r.lift?.conversionRate ?? 0} />}
            <p class="muted" data-testid="attributed-through">
              {r.attributedThrough ? `Conversions counted for purchases up to ${new Date(r.attributedThrough).toLocaleString()}.` : 'Conversions are not counted yet.'}
            </p>
          </div>
          <div class="card">
            <table>
              <thead><tr>{['group', 'targeted', 'sent', 'delivered', 'opened', 'clicked', 'converted', 'revenue'].map((h) => <th scope="col">{h}</th>)}</tr></thead>
              <tbody>
                {rows.map((x) => (
                  <tr><td>{x.group}</td><td>{fmt(x.targeted)}</td><td>{fmt(x.sent)}</td><td>{fmt(x.delivered)}</td><td>{fmt(x.opened)}</td><td>{fmt(x.clicked)}</td><td>{fmt(x.converted)}</td><td>{fmt(x.revenue, 2)}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </div>
  );
}

/** The interval on a scale centred on zero: a bar that crosses the zero line is not significant. */
function LiftBar({ low, high, point }: { low: number; high: number; point: number }) {
  const span = Math.max(Math.abs(low), Math.abs(high), 0.01) * 1.2;
  const x = (v: number) => 200 + (v / span) * 190;
  return (
    <svg role="img" aria-label={`Lift interval from ${pct(low)} to ${pct(high)}`} viewBox="0 0 400 40" width="100%">
      <line x1="200" x2="200" y1="0" y2="40" stroke="#888" />
      <rect x={x(low)} y="14" width={Math.max(1, x(high) - x(low))} height="12" class="bar" fill="#2457c5" opacity="0.5" />
      <circle cx={x(point)} cy="20" r="5" fill="#16213a" />
    </svg>
  );
}
