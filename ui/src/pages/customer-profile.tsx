import type { ComponentType } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Customer, Page, TimelineEntry } from '../types';
import { ErrorBox, fmt, pct, useLoad } from '../ui';
import { ChurnFactors } from './churn-factors';

export interface PanelProps {
  customer: Customer;
}

/**
 * The profile's panels, in order. A feature adds its own view of a customer by adding a component
 * here (e.g. a churn-risk explanation), without touching the page itself.
 */
export const PROFILE_PANELS: Array<{ key: string; Panel: ComponentType<PanelProps> }> = [
  { key: 'stats', Panel: StatsPanel },
  { key: 'predictions', Panel: PredictionsPanel },
  { key: 'churn', Panel: ChurnPanel },
  { key: 'segments', Panel: SegmentsPanel },
];

export function CustomerProfile({ externalId }: { externalId: string }) {
  const [c, error] = useLoad(() => api.get<Customer>(`/v1/customers/${enc(externalId)}`), [externalId]);
  return (
    <section aria-labelledby="h-customer">
      <p><a href="#/customers">← Customers</a></p>
      <h1 id="h-customer">{c ? [c.firstName, c.lastName].filter(Boolean).join(' ') || externalId : externalId}</h1>
      <ErrorBox error={error} />
      {c && (
        <>
          <div class="card" data-testid="customer-contact">
            <p>
              <code>{c.externalId}</code> · {c.email ?? 'no email'} ({c.emailConsent ?? 'no consent given'}{c.suppressed?.email ? ', suppressed' : ''}) · {c.phone ?? 'no phone'} ({c.smsConsent ?? 'no consent given'}{c.suppressed?.sms ? ', suppressed' : ''})
              {c.city ? ` · ${c.city}` : ''}{c.country ? `, ${c.country}` : ''}
            </p>
          </div>
          <div class="grid">
            {PROFILE_PANELS.map(({ key, Panel }) => <div class="card" key={key}><Panel customer={c} /></div>)}
          </div>
          <Timeline externalId={externalId} />
        </>
      )}
    </section>
  );
}

/** churnRisk with the three features that weigh most for this customer, once a fit has scored them. */
function ChurnPanel({ customer }: PanelProps) {
  if (!customer.externalId || customer.stats?.churnRisk == null) return null;
  return <ChurnFactors externalId={customer.externalId} />;
}

const day = (s: string | null | undefined) => (s ? new Date(s).toLocaleDateString() : '–');

function StatsPanel({ customer }: PanelProps) {
  const s = customer.stats;
  if (!s) return null;
  return (
    <div data-testid="customer-stats">
      <h2>Purchases</h2>
      <dl>
        <dt>Purchases</dt><dd>{fmt(s.purchaseCount)}</dd>
        <dt>Total spent</dt><dd>{fmt(s.totalSpent, 2)}</dd>
        <dt>Average order</dt><dd>{fmt(s.avgOrderValue, 2)}</dd>
        <dt>First / last purchase</dt><dd>{day(s.firstPurchaseAt)} / {day(s.lastPurchaseAt)}</dd>
        <dt>Every</dt><dd>{s.avgDaysBetweenPurchases === null ? '–' : `${fmt(s.avgDaysBetweenPurchases, 1)} days`}</dd>
        <dt>Top category</dt><dd>{s.topCategory ?? '–'}</dd>
      </dl>
    </div>
  );
}

function PredictionsPanel({ customer }: PanelProps) {
  const s = customer.stats;
  if (!s) return null;
  return (
    <div data-testid="customer-predictions">
      <h2>Predictions and score</h2>
      <dl>
        <dt>Lead score</dt><dd data-testid="lead-score">{fmt(s.leadScore)}</dd>
        <dt>Still active (pAlive)</dt><dd>{pct(s.pAlive)}</dd>
        <dt>Churn risk (90 days)</dt><dd>{pct(s.churnRisk)}</dd>
        <dt>Expected purchases (90 days)</dt><dd>{fmt(s.expectedPurchases90d, 2)}</dd>
        <dt>Predicted spend (365 days)</dt><dd>{fmt(s.predictedSpend365d, 2)}</dd>
      </dl>
      {s.pAlive === null && <p class="muted">No fit yet: predictions appear after the nightly fit (or POST /v1/predictions/fit).</p>}
    </div>
  );
}

function SegmentsPanel({ customer }: PanelProps) {
  const [r, error] = useLoad(() => api.get<{ data: Array<{ id: string; name: string; kind: string }>; count: number }>(`/v1/customers/${enc(customer.externalId ?? '')}/segments`), [customer.externalId]);
  return (
    <div data-testid="customer-segments">
      <h2>Segments{r ? ` (${r.count})` : ''}</h2>
      <ErrorBox error={error} />
      {r && (r.data.length ? <ul>{r.data.map((s) => <li><a href={`#/segments/${enc(s.id)}`}>{s.name}</a></li>)}</ul> : <p class="muted">In no segment now.</p>)}
    </div>
  );
}

function describe(e: TimelineEntry): string {
  switch (e.type) {
    case 'purchase':
      return `Order ${e.orderId}: ${fmt(e.total, 2)}${e.refunded ? ` (refunded ${fmt(e.refunded, 2)})` : ''} — ${(e.items as Array<{ quantity: number; name: string | null; sku: string }>).map((i) => `${i.quantity} × ${i.name ?? i.sku}`).join(', ') || 'no items'}`;
    case 'refund':
      return `Refund of ${fmt(e.amount, 2)} on order ${e.orderId}`;
    case 'event':
      return `${e.eventType}${e.channel ? ` (${e.channel})` : ''}`;
    case 'message':
      return `${e.channel === 'sms' ? 'SMS' : 'Email'} ${e.status}${e.skipReason ? `: ${e.skipReason}` : ''}${e.error ? `: ${e.error}` : ''}${e.openedAt ? ', opened' : ''}${e.clickedAt ? ', clicked' : ''}`;
    default:
      return `${e.channel === 'sms' ? 'SMS' : 'Email'} consent: ${e.previous ?? 'none'} → ${e.value ?? 'none'}`;
  }
}

function Timeline({ externalId }: { externalId: string }) {
  const [entries, setEntries] = useState<TimelineEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const load = async (after: string | null) => {
    try {
      const page = await api.get<Page<TimelineEntry>>(`/v1/customers/${enc(externalId)}/timeline?limit=50${after ? `&cursor=${enc(after)}` : ''}`);
      setEntries((prev) => (after ? [...prev, ...page.data] : page.data));
      setCursor(page.nextCursor);
    } catch (err) {
      setError(err);
    }
  };
  useEffect(() => void load(null), [externalId]);
  return (
    <div class="card">
      <h2>Timeline</h2>
      <ErrorBox error={error} />
      <table data-testid="timeline">
        <thead><tr><th>When</th><th>What</th><th></th></tr></thead>
        <tbody>
          {entries.map((e) => (
            <tr data-type={e.type}>
              <td>{new Date(e.at).toLocaleString()}</td>
              <td><span class="badge">{e.type}</span></td>
              <td>{describe(e)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {!entries.length && <p class="muted">Nothing yet.</p>}
      {cursor && <button type="button" class="secondary" onClick={() => void load(cursor)}>Older</button>}
    </div>
  );
}
