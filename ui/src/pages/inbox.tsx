import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { InboxMessage, Page } from '../types';
import { ErrorBox } from '../ui';

/**
 * The built-in inbox (SMTP_URL / TWILIO_API_URL = inbox:): what hark delivered, newest first,
 * refreshed every few seconds. Each email renders in a sandboxed iframe (no scripts, no forms, no
 * way to the key) whose own CSP also refuses images from here: viewing is not an open, so the
 * tracking pixel must not load. Headers on demand. SMS with their encoding and segment count.
 */
const NO_PIXEL = '<meta http-equiv="Content-Security-Policy" content="img-src data:">';
/** The policy must sit in the document's head to count; before a doctype it would force quirks mode. */
const withoutPixel = (html: string) => (/<head\b[^>]*>/i.test(html) ? html.replace(/<head\b[^>]*>/i, (h) => h + NO_PIXEL) : NO_PIXEL + html);

export function Inbox(_: { args: string[] }) {
  const [channel, setChannel] = useState<'' | 'email' | 'sms'>('');
  const [items, setItems] = useState<InboxMessage[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const [loaded, setLoaded] = useState(false);
  const query = (cursor?: string) => `/v1/inbox?limit=20${channel ? `&channel=${channel}` : ''}${cursor ? `&cursor=${enc(cursor)}` : ''}`;

  // The first page, again every 3 s: new messages appear on top, pages already loaded stay.
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const load = async () => {
      try {
        const p = await api.get<Page<InboxMessage>>(query());
        if (!live) return;
        setItems((old) => {
          const fresh = p.data.filter((m) => !old.some((o) => o.id === m.id));
          if (!old.length) setNext(p.nextCursor);
          return [...fresh, ...old].sort((a, b) => Number(b.id) - Number(a.id));
        });
        setError(undefined);
      } catch (e) {
        if (live) setError(e);
      }
      if (live) (setLoaded(true), (timer = setTimeout(load, 3000)));
    };
    setItems([]);
    setNext(null);
    setLoaded(false);
    void load();
    return () => ((live = false), clearTimeout(timer));
  }, [channel]);

  const more = async () => {
    if (!next) return;
    try {
      const p = await api.get<Page<InboxMessage>>(query(next));
      setItems((old) => [...old, ...p.data.filter((m) => !old.some((o) => o.id === m.id))]);
      setNext(p.nextCursor);
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section aria-labelledby="h-inbox">
      <h1 id="h-inbox">Inbox</h1>
      <p class="muted">
        Messages hark delivered to its built-in inbox (<code>SMTP_URL=inbox:</code>, <code>TWILIO_API_URL=inbox:</code>) instead of a mail server or Twilio.
      </p>
      <div class="row" role="group" aria-label="Channel">
        {(['', 'email', 'sms'] as const).map((c) => (
          <button type="button" class={channel === c ? '' : 'secondary'} aria-pressed={channel === c} onClick={() => setChannel(c)}>
            {c === '' ? 'All' : c === 'email' ? 'Email' : 'SMS'}
          </button>
        ))}
      </div>
      <ErrorBox error={error} />
      {loaded && !items.length && <p class="card" data-testid="inbox-empty">Nothing here yet. Send a campaign, run an automation or send a test.</p>}
      <ol class="inbox" data-testid="inbox">
        {items.map((m) => (
          <li key={m.id}>{m.channel === 'email' ? <Email m={m} /> : <Sms m={m} />}</li>
        ))}
      </ol>
      {next && <button type="button" class="secondary" onClick={more}>Older messages</button>}
    </section>
  );
}

function Meta({ m }: { m: InboxMessage }) {
  return (
    <p class="meta">
      {m.test && <span class="badge">test</span>} <span class="badge">{m.channel}</span> <strong>To</strong> {m.to} · <strong>From</strong> {m.from} · <time dateTime={m.receivedAt}>{new Date(m.receivedAt).toLocaleString()}</time>
    </p>
  );
}

function Email({ m }: { m: InboxMessage }) {
  const [headers, setHeaders] = useState(false);
  return (
    <article class="card inbox-email" aria-label={`Email to ${m.to}: ${m.subject ?? ''}`}>
      <h2 class="subject">{m.subject}</h2>
      <Meta m={m} />
      <button type="button" class="link" aria-expanded={headers} onClick={() => setHeaders(!headers)}>
        {headers ? 'Hide headers' : 'Show headers'}
      </button>
      {headers && (
        <table class="headers" data-testid="headers">
          <tbody>
            {Object.entries(m.headers).map(([k, v]) => (
              <tr><th scope="row">{k}</th><td><code>{v}</code></td></tr>
            ))}
          </tbody>
        </table>
      )}
      <iframe class="preview" title={`Email: ${m.subject ?? ''}`} sandbox="" srcdoc={withoutPixel(m.html ?? '')} loading="lazy" />
    </article>
  );
}

function Sms({ m }: { m: InboxMessage }) {
  return (
    <article class="card inbox-sms" aria-label={`SMS to ${m.to}`}>
      <Meta m={m} />
      <p data-testid="sms-encoding">
        <span class="badge">{m.encoding}</span> {m.segments} segment{m.segments === 1 ? '' : 's'} · {m.text.length} characters
      </p>
      <pre class="sms-text">{m.text}</pre>
    </article>
  );
}
