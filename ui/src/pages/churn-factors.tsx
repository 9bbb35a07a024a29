import { api } from '../api';
import { ErrorBox, pct, useLoad } from '../ui';
import type { CustomerChurn } from './predictions-types';

/**
 * A customer's churnRisk and the three features that weigh most for them (self-contained: give it
 * an externalId, or the data already loaded). Each factor pushes the risk up or down against the
 * average customer of the workspace.
 */
export function ChurnFactors(props: { externalId: string; data?: CustomerChurn }) {
  const [loaded, err] = useLoad(() => (props.data ? Promise.resolve(props.data) : api.get<CustomerChurn>(`/v1/predictions/customers/${encodeURIComponent(props.externalId)}`)), [props.externalId, props.data]);
  const d = props.data ?? loaded;
  if (err) return <ErrorBox error={err} />;
  if (!d) return <p class="muted">Loading churn risk…</p>;
  if (d.churnRisk === null) return <p class="muted">No churn risk yet: this customer had not bought by the last fit ({d.asOf.slice(0, 10)}).</p>;
  return (
    <section class="card" aria-labelledby={`churn-${d.externalId}`} data-testid="churn-factors">
      <h2 id={`churn-${d.externalId}`}>Churn risk: <span data-testid="churn-risk">{pct(d.churnRisk)}</span></h2>
      <p class="muted">
        Chance of no purchase in the next 90 days, as of {d.asOf.slice(0, 10)}
        {d.churnModel === 'rule' ? ` (from the ${d.rule} rule${d.flagged ? ': the learned model ranked worse than recency' : ''})` : ''}.
      </p>
      {d.factors.length ? (
        <>
          <h3>What weighs most</h3>
          <ol>
            {d.factors.map((f) => (
              <li>
                <strong>{f.label}</strong> ({f.shown}) {f.direction === 'raises' ? 'raises' : 'lowers'} the risk
              </li>
            ))}
          </ol>
        </>
      ) : null}
    </section>
  );
}
