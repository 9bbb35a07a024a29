import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, session, setUnauthorizedHandler } from './api';
import { ErrorBox, Field } from './ui';
import { Overview } from './pages/overview';
import { Segments } from './pages/segments';
import { Templates } from './pages/templates';
import { Campaigns } from './pages/campaigns';
import { Results } from './pages/results';
import { Automations } from './pages/automations';
import { SettingsPage } from './pages/settings';
import { Inbox } from './pages/inbox';
import { Predictions } from './pages/predictions';
import { Connectors } from './pages/connectors';
import { Customers } from './pages/customers';
import { Imports } from './pages/imports';
import './styles.css';

const PAGES = [
  ['overview', 'Overview', Overview],
  ['customers', 'Customers', Customers],
  ['segments', 'Segments', Segments],
  ['templates', 'Templates', Templates],
  ['campaigns', 'Campaigns', Campaigns],
  ['results', 'Results', Results],
  ['automations', 'Automations', Automations],
  ['inbox', 'Inbox', Inbox],
  ['predictions', 'Predictions', Predictions],
  ['connectors', 'Connectors', Connectors],
  ['import', 'Import', Imports],
  ['settings', 'Settings', SettingsPage],
] as const;

/** Hash routes (#/campaigns/ID): no server fallback needed, and nothing secret ever goes in them. */
const readRoute = () => location.hash.replace(/^#\/?/, '').split('/');

function SignIn({ onDone }: { onDone: () => void }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async (e: Event) => {
    e.preventDefault();
    session.set(key.trim());
    try {
      await api.get('/v1/settings');
      onDone();
    } catch (err) {
      session.clear();
      setError(err instanceof ApiError && err.status === 401 ? new ApiError(401, 'unauthorized', 'That key was not accepted.') : err);
    }
  };
  return (
    <main class="signin">
      <h1>hark</h1>
      <form onSubmit={submit}>
        <Field label="Admin API key" hint="Kept in this tab only (sessionStorage); never in a URL.">
          {(id) => <input id={id} name="apiKey" type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />}
        </Field>
        <button type="submit">Sign in</button>
        <ErrorBox error={error} />
      </form>
    </main>
  );
}

function App() {
  const [signedIn, setSignedIn] = useState(!!session.get());
  const [route, setRoute] = useState(readRoute());
  useEffect(() => {
    const f = () => setRoute(readRoute());
    addEventListener('hashchange', f);
    setUnauthorizedHandler(() => {
      session.clear();
      setSignedIn(false);
    });
    return () => removeEventListener('hashchange', f);
  }, []);
  if (!signedIn) return <SignIn onDone={() => setSignedIn(true)} />;
  const [name = 'overview', ...rest] = route;
  const page = PAGES.find((p) => p[0] === name) ?? PAGES[0];
  const Page = page[2];
  return (
    <div class="shell">
      <a class="skip" href="#main">Skip to content</a>
      <nav aria-label="Main">
        <strong class="brand">hark</strong>
        <ul>
          {PAGES.map(([id, label]) => (
            <li>
              <a href={`#/${id}`} aria-current={id === page[0] ? 'page' : undefined}>{label}</a>
            </li>
          ))}
        </ul>
        <button
          type="button"
          class="link"
          onClick={() => {
            session.clear();
            setSignedIn(false);
          }}
        >
          Sign out
        </button>
      </nav>
      <main id="main" tabIndex={-1}>
        <Page args={rest} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById('root')!);
