import { useEffect, useRef, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { EmailPreview, Page, SmsPreview, Template } from '../types';
import { ErrorBox, Field, useLoad } from '../ui';
import { SendTest } from '../send-test';

export function Templates(_: { args: string[] }) {
  const [list, err, reload] = useLoad(() => api.get<Page<Template>>('/v1/templates?limit=200'));
  const [editing, setEditing] = useState<Template | null>(null);
  return (
    <section aria-labelledby="h-templates">
      <h1 id="h-templates">Templates</h1>
      <ErrorBox error={err} />
      <div class="card">
        <ul>
          {(list?.data ?? []).map((t) => (
            <li>
              <button type="button" class="link" onClick={() => setEditing(t)}>{t.name}</button> <span class="badge">{t.channel}</span>
            </li>
          ))}
        </ul>
        <div class="row">
          <button type="button" onClick={() => setEditing({ id: '', name: '', channel: 'email', subject: 'Hello {{ customer.firstName }}', body: '<p>Hi {{ customer.firstName }},</p>\n<p>We miss you.</p>\n<p><a href="{{ unsubscribeUrl }}">Unsubscribe</a></p>', format: 'html' })}>New email template</button>
          <button type="button" class="secondary" onClick={() => setEditing({ id: '', name: '', channel: 'sms', body: 'Hi {{ customer.firstName }}, 10% off this week. Reply STOP to opt out.' })}>New SMS template</button>
        </div>
      </div>
      {editing && <Editor key={editing.id || editing.channel} t={editing} onSaved={(t) => (reload(), setEditing(t))} />}
    </section>
  );
}

function Editor({ t, onSaved }: { t: Template; onSaved: (t: Template) => void }) {
  const [draft, setDraft] = useState(t);
  const [customer, setCustomer] = useState('');
  const [preview, setPreview] = useState<EmailPreview | SmsPreview | null>(null);
  const [error, setError] = useState<unknown>();
  const seq = useRef(0);
  const set = (patch: Partial<Template>) => setDraft((d) => ({ ...d, ...patch }));
  const bodyOf = (d: Template) => ({ name: d.name, body: d.body, ...(d.channel === 'email' ? { subject: d.subject ?? '', format: d.format ?? 'html' } : {}) });
  // A saved template previews as you type: the edit is saved (a 422 shows the compile error) and rendered.
  useEffect(() => {
    if (!draft.id) return;
    const mine = ++seq.current;
    const timer = setTimeout(async () => {
      try {
        await api.patch(`/v1/templates/${enc(draft.id)}`, bodyOf(draft));
        const p = await api.post<EmailPreview | SmsPreview>(`/v1/templates/${enc(draft.id)}/preview`, customer ? { customerExternalId: customer } : {});
        if (mine === seq.current) (setPreview(p), setError(undefined));
      } catch (e) {
        if (mine === seq.current) setError(e);
      }
    }, 400);
    return () => clearTimeout(timer);
  }, [draft.id, draft.name, draft.subject, draft.body, draft.format, customer]);
  const create = async (e: Event) => {
    e.preventDefault();
    if (draft.id) return;
    try {
      const created = await api.post<Template>('/v1/templates', { channel: draft.channel, ...bodyOf(draft) });
      onSaved(created);
    } catch (err) {
      setError(err);
    }
  };
  const sms = preview && 'encoding' in preview ? preview : null;
  const email = preview && 'html' in preview ? preview : null;
  return (
    <form class="card" onSubmit={create} aria-labelledby="h-tpl">
      <h2 id="h-tpl">{draft.id ? `Edit ${t.name}` : `New ${draft.channel} template`}</h2>
      <div class="cols">
        <div>
          <Field label="Template name">{(id) => <input id={id} required value={draft.name} onInput={(e) => set({ name: e.currentTarget.value })} />}</Field>
          {draft.channel === 'email' && (
            <>
              <Field label="Subject">{(id) => <input id={id} value={draft.subject ?? ''} onInput={(e) => set({ subject: e.currentTarget.value })} />}</Field>
              <Field label="Format">
                {(id) => (
                  <select id={id} value={draft.format ?? 'html'} onChange={(e) => set({ format: e.currentTarget.value as Template['format'] })}>
                    <option value="html">HTML</option>
                    <option value="mjml">MJML</option>
                    <option value="text">Text</option>
                  </select>
                )}
              </Field>
            </>
          )}
          <Field label="Body (Liquid)" hint="Variables: customer.*, stats.*, workspace.*, unsubscribeUrl">
            {(id) => <textarea id={id} value={draft.body} onInput={(e) => set({ body: e.currentTarget.value })} />}
          </Field>
          {!draft.id && <button type="submit">Create template</button>}
          <ErrorBox error={error} />
          {draft.id && <SendTest path={`/v1/templates/${enc(draft.id)}/test`} channel={draft.channel} label="Send a test of this template" />}
        </div>
        <div aria-live="polite">
          <Field label="Preview for customer (external id, optional)">{(id) => <input id={id} value={customer} onInput={(e) => setCustomer(e.currentTarget.value)} />}</Field>
          {!draft.id && <p class="muted">Create the template to see its preview.</p>}
          {sms && (
            <div>
              <p data-testid="sms-info">
                <span class="badge">{sms.encoding}</span> {sms.segments} segment{sms.segments === 1 ? '' : 's'} · {sms.text.length} characters
              </p>
              <pre class="card">{sms.text}</pre>
            </div>
          )}
          {email && (
            <div>
              <p><strong>Subject:</strong> {email.subject}</p>
              {/* Sandboxed without scripts: the email's HTML cannot run code or reach the key. */}
              <iframe class="preview" title="Email preview" sandbox="" srcdoc={email.html} />
            </div>
          )}
        </div>
      </div>
    </form>
  );
}
