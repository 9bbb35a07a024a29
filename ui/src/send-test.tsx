import { useState } from 'preact/hooks';
import { api } from './api';
import type { TestSendResult } from './types';
import { ErrorBox, Field } from './ui';

/**
 * "Send test": the template (or the campaign's template) to 1-5 addresses now, subject prefixed
 * "[Test] ", rendered as a chosen customer or sample values. Counted in no campaign or report.
 */
export function SendTest({ path, channel, label }: { path: string; channel: 'email' | 'sms'; label: string }) {
  const [to, setTo] = useState('');
  const [customer, setCustomer] = useState('');
  const [sent, setSent] = useState<TestSendResult[] | null>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const send = async () => {
    setError(undefined);
    setSent(null);
    setBusy(true);
    try {
      const addresses = to.split(/[\s,;]+/).filter(Boolean);
      const r = await api.post<{ data: TestSendResult[] }>(path, { to: addresses, ...(customer.trim() ? { customerExternalId: customer.trim() } : {}) });
      setSent(r.data);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <fieldset class="send-test">
      <legend>{label}</legend>
      <Field label="Send test to" hint={channel === 'email' ? 'Up to 5 email addresses, separated by commas' : 'Up to 5 phone numbers in E.164 (+15125550100), separated by commas'}>
        {(id) => <input id={id} value={to} onInput={(e) => setTo(e.currentTarget.value)} />}
      </Field>
      <Field label="Render as customer (external id, optional)">{(id) => <input id={id} value={customer} onInput={(e) => setCustomer(e.currentTarget.value)} />}</Field>
      <button type="button" class="secondary" disabled={busy || !to.trim()} onClick={send}>Send test</button>
      <ErrorBox error={error} />
      {sent && (
        <ul class="test-results" aria-live="polite" data-testid="test-results">
          {sent.map((r) => (
            <li>
              <span class={`badge ${r.status}`}>{r.status}</span> {r.to}
              {r.error ? ` — ${r.error}` : ''}
            </li>
          ))}
        </ul>
      )}
      {sent && sent.some((r) => r.status === 'sent') && <p class="muted">Sent with the "[Test] " prefix; with the built-in inbox it is on the <a href="#/inbox">Inbox</a> page.</p>}
    </fieldset>
  );
}
