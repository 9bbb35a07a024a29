import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { Customer, Page } from '../types';
import { ErrorBox, Field, fmt, useLoad } from '../ui';
import { CustomerProfile } from './customer-profile';

/** Customers: search (externalId, email or phone prefix; name substring), then a profile per customer (#/customers/ID). */
export function Customers({ args }: { args: string[] }) {
  const externalId = args[0] ? decodeURIComponent(args[0]) : '';
  if (externalId) return <CustomerProfile key={externalId} externalId={externalId} />;
  return <CustomerSearch />;
}

function CustomerSearch() {
  const [q, setQ] = useState('');
  const [debounced, setDebounced] = useState('');
  const [pages, setPages] = useState<Customer[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  useEffect(() => {
    const t = setTimeout(() => setDebounced(q.trim()), 250);
    return () => clearTimeout(t);
  }, [q]);
  const [first, error] = useLoad(() => api.get<Page<Customer>>(`/v1/customers?limit=25${debounced ? `&q=${enc(debounced)}` : ''}`), [debounced]);
  useEffect(() => {
    setPages(first?.data ?? []);
    setCursor(first?.nextCursor ?? null);
  }, [first]);
  const more = async () => {
    const next = await api.get<Page<Customer>>(`/v1/customers?limit=25${debounced ? `&q=${enc(debounced)}` : ''}&cursor=${enc(cursor!)}`);
    setPages([...pages, ...next.data]);
    setCursor(next.nextCursor);
  };
  return (
    <section aria-labelledby="h-customers">
      <h1 id="h-customers">Customers</h1>
      <div class="card">
        <Field label="Search customers" hint="An externalId, email or phone (from its start), or part of a first or last name.">
          {(id) => <input id={id} type="search" value={q} onInput={(e) => setQ(e.currentTarget.value)} />}
        </Field>
        <ErrorBox error={error} />
      </div>
      <div class="card">
        <table data-testid="customer-results">
          <thead><tr><th>Customer</th><th>Name</th><th>Email</th><th>Phone</th><th>Purchases</th><th>Spent</th><th>Last purchase</th></tr></thead>
          <tbody>
            {pages.map((c) => (
              <tr>
                <td><a href={`#/customers/${enc(c.externalId ?? '')}`}>{c.externalId ?? '(no id)'}</a></td>
                <td>{[c.firstName, c.lastName].filter(Boolean).join(' ')}</td>
                <td>{c.email}</td><td>{c.phone}</td>
                <td>{fmt(c.summary?.purchaseCount)}</td><td>{fmt(c.summary?.totalSpent, 2)}</td>
                <td>{c.summary?.lastPurchaseAt ? new Date(c.summary.lastPurchaseAt).toLocaleDateString() : '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {first && pages.length === 0 && <p class="muted">No customer matches.</p>}
        {cursor && <button type="button" class="secondary" onClick={() => void more()}>More</button>}
      </div>
    </section>
  );
}
