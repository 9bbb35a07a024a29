import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Page } from '../types';
import { ErrorBox, Field, useLoad } from '../ui';

/** Shapes of the Connectors section of API.md. */
interface Connector { id: string; type: 'shopify' | 'woocommerce'; name: string; url: string; setup?: string | null; refusedDeliveries?: number; lastDeliveryAt?: string | null }
interface Delivery { id: string; topic: string; receivedAt: string; outcome: string; reason?: string }

const WHERE: Record<Connector['type'], string> = {
  shopify: 'Shopify admin → Settings → Notifications → Webhooks → Create webhook (format JSON). Add one per event: order creation, order payment, refund creation, customer creation, customer update. Paste the URL; the secret is the signing key Shopify shows under the webhooks list.',
  woocommerce: 'WordPress admin → WooCommerce → Settings → Advanced → Webhooks → Add webhook (status Active, API version WP REST API v3). Add one per topic: order created, order updated, customer created, customer updated. Paste the URL as Delivery URL and the same secret you typed here.',
};

export function Connectors({ args }: { args: string[] }) {
  const [list, err, reload] = useLoad(() => api.get<Page<Connector>>('/v1/connectors'));
  const selected = args[0];
  return (
    <section aria-labelledby="h-connectors">
      <h1 id="h-connectors">Connectors</h1>
      <p class="muted">Shopify and WooCommerce send their orders, refunds and customers to hark as they happen.</p>
      <ErrorBox error={err} />
      <NewConnector onCreated={(c) => (reload(), (location.hash = `#/connectors/${c.id}`))} />
      <div class="card">
        <h2>Your connectors</h2>
        {list && !list.data.length && <p>None yet.</p>}
        <ul>
          {list?.data.map((c) => (
            <li><a href={`#/connectors/${c.id}`}>{c.name}</a> <span class="muted">({c.type}{c.lastDeliveryAt ? `, last delivery ${new Date(c.lastDeliveryAt).toLocaleString()}` : ', no delivery yet'})</span></li>
          ))}
        </ul>
      </div>
      {selected && list?.data.find((c) => c.id === selected) && <ConnectorDetail c={list.data.find((c) => c.id === selected)!} onDeleted={() => (reload(), (location.hash = '#/connectors'))} />}
    </section>
  );
}

function NewConnector({ onCreated }: { onCreated: (c: Connector) => void }) {
  const [v, setV] = useState({ type: 'shopify' as Connector['type'], name: '', secret: '' });
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const c = await api.post<Connector>('/v1/connectors', v);
      setV({ ...v, name: '', secret: '' });
      setError(undefined);
      onCreated(c);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="h-new-connector">
      <h2 id="h-new-connector">Add a connector</h2>
      <div class="row">
        <Field label="Platform">
          {(id) => (
            <select id={id} value={v.type} onChange={(e) => setV({ ...v, type: e.currentTarget.value as Connector['type'] })}>
              <option value="shopify">Shopify</option>
              <option value="woocommerce">WooCommerce</option>
            </select>
          )}
        </Field>
        <Field label="Connector name">{(id) => <input id={id} required value={v.name} onInput={(e) => setV({ ...v, name: e.currentTarget.value })} />}</Field>
        <Field label="Webhook secret" hint="The key the platform signs with; kept encrypted, never shown again.">
          {(id) => <input id={id} type="password" autocomplete="off" required minLength={8} value={v.secret} onInput={(e) => setV({ ...v, secret: e.currentTarget.value })} />}
        </Field>
        <button type="submit">Create connector</button>
      </div>
      <p class="muted">{WHERE[v.type]}</p>
      <ErrorBox error={error} />
    </form>
  );
}

function ConnectorDetail({ c, onDeleted }: { c: Connector; onDeleted: () => void }) {
  const [deliveries, err, reload] = useLoad(() => api.get<{ data: Delivery[] }>(`/v1/connectors/${enc(c.id)}/deliveries`), [c.id]);
  const [copied, setCopied] = useState(false);
  const [error, setError] = useState<unknown>();
  useEffect(() => setError(err), [err]);
  useEffect(() => {
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [c.id]);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(c.url);
      setCopied(true);
    } catch {
      // No clipboard API outside a secure context (plain http): select the field for Ctrl+C instead.
      const field = document.querySelector<HTMLInputElement>('input[readonly]');
      field?.select();
      setCopied(false);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete ${c.name}? The platform's deliveries will be refused from now on.`)) return;
    try {
      await api.delete(`/v1/connectors/${enc(c.id)}`);
      onDeleted();
    } catch (e2) {
      setError(e2);
    }
  };
  return (
    <div class="card" aria-labelledby="h-connector">
      <h2 id="h-connector">{c.name}</h2>
      <Field label="Webhook URL">{(id) => <input id={id} readOnly value={c.url} onFocus={(e) => e.currentTarget.select()} />}</Field>
      <button type="button" onClick={copy}>Copy URL</button> {copied && <span role="status">Copied.</span>}
      <p>Where to paste it: {WHERE[c.type]}</p>
      {!!c.refusedDeliveries && <p class="muted">{c.refusedDeliveries} deliveries refused for their signature (check the secret).</p>}
      <h3>Last deliveries</h3>
      <button type="button" class="link" onClick={reload}>Refresh</button>
      <table aria-label="Last deliveries">
        <thead><tr><th scope="col">Received</th><th scope="col">Topic</th><th scope="col">Outcome</th><th scope="col">Reason</th></tr></thead>
        <tbody>
          {deliveries?.data.map((d) => (
            <tr><td>{new Date(d.receivedAt).toLocaleString()}</td><td>{d.topic}</td><td>{d.outcome}</td><td>{d.reason ?? ''}</td></tr>
          ))}
        </tbody>
      </table>
      {deliveries && !deliveries.data.length && <p>No deliveries yet.</p>}
      <button type="button" class="link" onClick={remove}>Delete connector</button>
      <ErrorBox error={error} />
    </div>
  );
}
