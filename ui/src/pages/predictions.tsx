import { useState } from 'preact/hooks';
import { api, ApiError } from '../api';
import { ColumnChart, ErrorBox, Field, fmt, pct, useLoad } from '../ui';
import { ChurnFactors } from './churn-factors';
import type { ModelView, Validation } from './predictions-types';

const MODEL_NAMES: Record<string, string> = { 'mbg-nbd': 'MBG/NBD (modified BG/NBD)', 'bg-nbd': 'BG/NBD' };
const day = (iso: string) => iso.slice(0, 10);
/** ", and at the N earlier cut-offs back to X": the windows stacked with the most recent one. */
const trainedWindows = (t: NonNullable<ModelView['churn']['trainedOn']>) => {
  const older = (t.windows ?? []).slice(1);
  return older.length ? ` and at ${older.length} earlier cut-off${older.length > 1 ? 's' : ''} 30 days apart back to ${day(older[older.length - 1]!.cutoff)}` : '';
};

/** Predicted against observed share who did not buy, per tenth of customers by churnRisk, as paired columns. */
function CalibrationChart({ v }: { v: Validation }) {
  const w = 600;
  const h = 180;
  const bw = w / 10;
  const title = 'Predicted and observed share who did not buy, by tenth of customers from lowest to highest churn risk';
  return (
    <figure class="chart" data-testid="calibration-chart">
      <figcaption>Calibration: predicted (dark) against observed (light), by decile of churn risk</figcaption>
      <svg role="img" aria-label={title} viewBox={`0 0 ${w} ${h + 20}`} width="100%">
        {v.calibration.map((d, i) => (
          <g>
            <rect x={i * bw + 4} y={h - d.predicted * h} width={bw / 2 - 4} height={d.predicted * h} class="bar">
              <title>{`decile ${d.decile}: predicted ${pct(d.predicted)}`}</title>
            </rect>
            <rect x={i * bw + bw / 2} y={h - d.observed * h} width={bw / 2 - 4} height={d.observed * h} fill="#9db3e3">
              <title>{`decile ${d.decile}: observed ${pct(d.observed)}`}</title>
            </rect>
            <text x={i * bw + bw / 2} y={h + 16} class="lbl" text-anchor="middle">{d.decile}</text>
          </g>
        ))}
        <text x="0" y="12" class="lbl">100%</text>
        <text x="0" y={h} class="lbl">0%</text>
      </svg>
    </figure>
  );
}

/** The validation in a marketer's words. */
function ValidationText({ v }: { v: Validation }) {
  const share = Math.round(v.topShare * 100);
  return (
    <div data-testid="validation-text">
      <p>
        Checked on your own history: fitted on purchases up to {day(v.calibrationEnd)}, then compared with the {fmt(v.churnDays)} days after, over {fmt(v.customers)} customers.
      </p>
      <p>
        Of the {share}% of customers we rated most likely to lapse, <strong>{pct(v.topChurned)}</strong> did not buy in the next {fmt(v.churnDays)} days; ranking by days since the last
        purchase would have found <strong>{pct(v.topChurnedByRecency)}</strong>.
      </p>
      <p>
        Overall {pct(v.churnRate)} did not buy; we predicted {pct(v.meanChurnRisk)} on average. We expected {fmt(v.predictedPurchases)} purchases up to {day(v.holdoutEnd)}; there were{' '}
        {fmt(v.actualPurchases)}.
      </p>
      <p class="muted">
        Ranking quality (AUC, 0.5 is a coin): {fmt(v.churnAuc, 3)} against {fmt(v.recencyAuc, 3)} for days since the last purchase. Error (Brier, lower is better): {fmt(v.brier, 3)} against{' '}
        {fmt(v.baseRateBrier, 3)} for giving everyone the average.
      </p>
    </div>
  );
}

/** One customer's churn risk and what weighs most for them, looked up by externalId. */
function CustomerLookup() {
  const [typed, setTyped] = useState('');
  const [id, setId] = useState<string | null>(null);
  return (
    <div class="card">
      <h2>One customer</h2>
      <form class="row" onSubmit={(e) => (e.preventDefault(), setId(typed.trim() || null))}>
        <Field label="Customer externalId">{(fid) => <input id={fid} name="externalId" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />}</Field>
        <button type="submit">Show churn risk</button>
      </form>
      {id && <ChurnFactors externalId={id} />}
    </div>
  );
}

export function Predictions(_: { args: string[] }) {
  const [m, err, reload] = useLoad(() => api.get<ModelView>('/v1/predictions/model'));
  const [busy, setBusy] = useState(false);
  const [fitErr, setFitErr] = useState<unknown>();
  const fit = async () => {
    setBusy(true);
    setFitErr(undefined);
    try {
      await api.post('/v1/predictions/fit', {});
      reload();
    } catch (e) {
      setFitErr(e);
    } finally {
      setBusy(false);
    }
  };
  const none = err instanceof ApiError && err.status === 404;
  return (
    <section aria-labelledby="h-predictions">
      <h1 id="h-predictions">Predictions</h1>
      {none ? <p>No model has been fitted yet. It fits every night; you can fit now.</p> : <ErrorBox error={err} />}
      <button type="button" onClick={fit} disabled={busy}>{busy ? 'Fitting…' : 'Fit now'}</button>
      <ErrorBox error={fitErr} />
      {m && (
        <>
          <div class="grid">
            <div class="card" data-testid="model-card">
              <div class="muted">Purchase model</div>
              <div class="big">{MODEL_NAMES[m.model] ?? m.model}</div>
              <p>
                Fitted {new Date(m.fittedAt).toLocaleString()} on purchases up to {day(m.asOf)}, {fmt(m.customers)} customers.
              </p>
            </div>
            <div class="card" data-testid="churn-card">
              <div class="muted">Churn risk (no purchase in the next 90 days)</div>
              <div class="big">{m.churn.model === 'rule' ? `Rule: ${m.churn.rule}` : 'Learned'}</div>
              <p>{m.churn.description}{m.churn.trainedOn ? `, trained on ${fmt(m.churn.trainedOn.customers)} customers as of ${day(m.churn.trainedOn.cutoff)}${trainedWindows(m.churn.trainedOn)}` : ''}.</p>
              {m.churn.reason && <p class="muted">{m.churn.reason}</p>}
            </div>
          </div>
          {m.churn.flagged && (
            <div class="error" role="status" data-testid="flagged">
              The learned churn model ranked worse than plain days since the last purchase on your history, so churn risk (and the "likely to churn" preset) uses the recency rule instead.
            </div>
          )}
          <div class="card">
            <h2>How well it did</h2>
            {m.validation ? <ValidationText v={m.validation} /> : <p class="muted">Not validated yet: it needs at least 90 days of history before the training cut-off.</p>}
            {m.validation && <CalibrationChart v={m.validation} />}
          </div>
          <div class="card">
            {m.churn.distribution ? (
              <ColumnChart title="Customers by churn risk (0 to 100%, in tenths)" points={m.churn.distribution.map((b) => ({ label: `${Math.round(b.from * 100)}–${Math.round(b.to * 100)}%`, value: b.customers }))} />
            ) : (
              <p class="muted">Scoring is under way.</p>
            )}
          </div>
          <CustomerLookup />
        </>
      )}
    </section>
  );
}
