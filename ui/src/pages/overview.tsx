import { api } from '../api';
import type { Automation, Campaign, Overview as O, Page } from '../types';
import { ColumnChart, ErrorBox, fmt, useLoad } from '../ui';

export function Overview(_: { args: string[] }) {
  const [o, err] = useLoad(() => api.get<O>('/v1/overview'));
  const [camps] = useLoad(() => api.get<Page<Campaign>>('/v1/campaigns?limit=20').catch(() => ({ data: [], nextCursor: null })));
  const [autos] = useLoad(() => api.get<Page<Automation>>('/v1/automations?limit=20').catch(() => ({ data: [], nextCursor: null })));
  const running = (camps?.data ?? []).filter((c) => c.status === 'sending' || c.status === 'scheduled');
  return (
    <section aria-labelledby="h-overview">
      <h1 id="h-overview">Overview</h1>
      <ErrorBox error={err} />
      <div class="grid">
        <div class="card">
          <div class="muted">Customers</div>
          <div class="big" data-testid="customers">{fmt(o?.customers)}</div>
        </div>
        <div class="card">
          <div class="muted">Purchases, last 30 days</div>
          <div class="big">{fmt(o?.purchasesPerDay.reduce((s, d) => s + d.count, 0))}</div>
        </div>
        <div class="card">
          <div class="muted">Campaigns sending or scheduled</div>
          <div class="big">{fmt((o?.campaigns.sending ?? 0) + (o?.campaigns.scheduled ?? 0))}</div>
        </div>
        <div class="card">
          <div class="muted">Automations enabled</div>
          <div class="big">{fmt(o?.automations.enabled)}</div>
        </div>
      </div>
      <div class="card">
        <ColumnChart title={`Purchases per day (${o?.timezone ?? ''})`} points={(o?.purchasesPerDay ?? []).map((d) => ({ label: d.day, value: d.count }))} />
      </div>
      <div class="cols">
        <div class="card">
          <h2>Running campaigns</h2>
          {running.length ? (
            <ul>{running.map((c) => <li><a href={`#/campaigns/${c.id}`}>{c.name}</a> <span class="badge">{c.status}</span></li>)}</ul>
          ) : (
            <p class="muted">None.</p>
          )}
        </div>
        <div class="card">
          <h2>Automations</h2>
          {autos?.data.length ? (
            <ul>{autos.data.map((a) => <li><a href="#/automations">{a.name}</a> <span class="badge">{a.enabled ? 'on' : 'off'}</span></li>)}</ul>
          ) : (
            <p class="muted">None.</p>
          )}
        </div>
      </div>
    </section>
  );
}
