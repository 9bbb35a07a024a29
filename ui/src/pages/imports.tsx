import { useEffect, useState } from 'preact/hooks';
import { api, enc } from '../api';
import type { ImportJob, Page } from '../types';
import { ErrorBox, Field, fmt, pct, useLoad } from '../ui';
import { headerCells, uploadCsv } from '../upload';
import { FIELDS, guessMapping, Kind } from './import-mapping';

/**
 * Import: pick a CSV, check the mapping guessed from its header (each column's field, editable),
 * upload it (the browser streams the file), then watch the job: a live progress bar, the counts
 * and the rejected lines with their reasons.
 */
export function Imports() {
  const [kind, setKind] = useState<Kind>('purchases');
  const [file, setFile] = useState<File | null>(null);
  const [header, setHeader] = useState<string[]>([]);
  const [mapping, setMapping] = useState<string[]>([]);
  const [dateFormat, setDateFormat] = useState('');
  const [timezone, setTimezone] = useState('');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [jobId, setJobId] = useState<string | null>(null);
  const [list, , reload] = useLoad(() => api.get<Page<ImportJob>>('/v1/imports?limit=10'), [jobId]);

  const pick = async (f: File | null) => {
    setFile(f);
    setError(undefined);
    if (!f) return setHeader([]);
    const head = await f.slice(0, 65536).text();
    const cells = headerCells(head.split(/\r?\n/)[0] ?? '');
    setHeader(cells);
    setMapping(guessMapping(kind, cells));
  };
  useEffect(() => setMapping(guessMapping(kind, header)), [kind]);

  const start = async (e: Event) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(undefined);
    // Columns whose field is not their own name are named in the mapping; "" ignores one.
    const map: Record<string, string> = {};
    header.forEach((col, i) => {
      if ((mapping[i] ?? '') !== col) map[col] = mapping[i] ?? '';
    });
    const q = [`kind=${kind}`, Object.keys(map).length ? `mapping=${enc(JSON.stringify(map))}` : '', dateFormat ? `dateFormat=${enc(dateFormat)}` : '', timezone ? `timezone=${enc(timezone)}` : ''].filter(Boolean).join('&');
    try {
      const job = await uploadCsv<{ id: string }>(`/v1/imports?${q}`, file);
      setJobId(job.id);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="h-import">
      <h1 id="h-import">Import</h1>
      <form class="card" onSubmit={start}>
        <div class="row">
          <Field label="Kind">
            {(id) => (
              <select id={id} value={kind} onChange={(e) => setKind(e.currentTarget.value as Kind)}>
                <option value="purchases">Purchases (one row per item)</option>
                <option value="customers">Customers</option>
              </select>
            )}
          </Field>
          <Field label="CSV file" hint="Up to 200 MB, UTF-8 (a header row names the columns).">
            {(id) => <input id={id} type="file" accept=".csv,text/csv" onChange={(e) => void pick(e.currentTarget.files?.[0] ?? null)} />}
          </Field>
        </div>
        {header.length > 0 && (
          <>
            <h2>Columns</h2>
            <table data-testid="mapping">
              <thead><tr><th>Column in the file</th><th>hark field</th></tr></thead>
              <tbody>
                {header.map((col, i) => (
                  <tr>
                    <td><code>{col}</code></td>
                    <td>
                      <select aria-label={`Field for column ${col}`} value={mapping[i] ?? ''} onChange={(e) => setMapping(mapping.map((m, k) => (k === i ? e.currentTarget.value : m)))}>
                        <option value="">(ignore)</option>
                        {FIELDS[kind].map((f) => <option value={f}>{f}</option>)}
                      </select>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {kind === 'purchases' && (
              <div class="row">
                <Field label="Date format" hint="Luxon tokens, e.g. yyyy-MM-dd HH:mm:ss or dd/MM/yyyy; empty for ISO-8601.">
                  {(id) => <input id={id} value={dateFormat} onInput={(e) => setDateFormat(e.currentTarget.value)} />}
                </Field>
                <Field label="Time zone" hint="Of dates without an offset; empty for the workspace's.">
                  {(id) => <input id={id} value={timezone} placeholder="Europe/London" onInput={(e) => setTimezone(e.currentTarget.value)} />}
                </Field>
              </div>
            )}
          </>
        )}
        <button type="submit" disabled={!file || busy}>{busy ? 'Uploading…' : 'Start import'}</button>
        <ErrorBox error={error} />
      </form>
      {jobId && <ImportProgress key={jobId} id={jobId} onDone={reload} />}
      <div class="card">
        <h2>Recent imports</h2>
        <table>
          <thead><tr><th>Started</th><th>Kind</th><th>Status</th><th>Rows</th><th>Accepted</th><th>Duplicates</th><th>Rejected</th></tr></thead>
          <tbody>
            {(list?.data ?? []).map((j) => (
              <tr>
                <td><button type="button" class="link" onClick={() => setJobId(j.id)}>{new Date(j.createdAt).toLocaleString()}</button></td>
                <td>{j.kind}</td><td><span class={`badge ${j.status === 'done' ? 'sent' : j.status === 'failed' ? 'failed' : ''}`}>{j.status}</span></td>
                <td>{fmt(j.rowsRead)}</td><td>{fmt(j.accepted)}</td><td>{fmt(j.duplicates)}</td><td>{fmt(j.rejected)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}

function ImportProgress({ id, onDone }: { id: string; onDone: () => void }) {
  const [job, setJob] = useState<ImportJob>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout>;
    const poll = async () => {
      try {
        const j = await api.get<ImportJob>(`/v1/imports/${enc(id)}`);
        if (!live) return;
        setJob(j);
        if (j.status === 'done' || j.status === 'failed') return onDone();
      } catch (err) {
        if (live) setError(err);
      }
      timer = setTimeout(poll, 500);
    };
    void poll();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [id]);
  return (
    <div class="card" data-testid="import-job" data-status={job?.status ?? 'queued'}>
      <h2>Import {job ? job.status : 'queued'}</h2>
      <label>
        Import progress {pct(job?.progress ?? 0)}
        <progress value={job?.progress ?? 0} max={1} />
      </label>
      {job && (
        <p data-testid="import-counts">
          {fmt(job.rowsRead)} rows read · {fmt(job.accepted)} accepted · {fmt(job.duplicates)} duplicates · {fmt(job.rejected)} rejected
        </p>
      )}
      {job?.failure && <div class="error" role="alert">{job.failure}</div>}
      {job && job.errors.length > 0 && (
        <>
          <h3>Rejected lines{job.rejected > job.errors.length ? ` (the first ${job.errors.length} of ${fmt(job.rejected)})` : ''}</h3>
          <table data-testid="import-errors">
            <thead><tr><th>Line</th><th>Reason</th></tr></thead>
            <tbody>{job.errors.map((e) => <tr><td>{e.line}</td><td>{e.error}</td></tr>)}</tbody>
          </table>
        </>
      )}
      <ErrorBox error={error} />
    </div>
  );
}
