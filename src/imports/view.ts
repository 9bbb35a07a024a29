import type { ImportRow } from './repo';

const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);

/** The API's import object (API.md "Imports"). An upload still arriving is not listed. */
export function importView(r: ImportRow) {
  return {
    id: r.id,
    kind: r.kind,
    status: r.status === 'uploading' ? 'queued' : r.status,
    rowsRead: r.rows_read,
    accepted: r.accepted,
    duplicates: r.duplicates,
    rejected: r.rejected,
    progress: r.status === 'done' ? 1 : Math.round(Number(r.progress) * 1000) / 1000,
    errors: r.errors ?? [],
    failure: r.failure,
    bytes: Number(r.bytes),
    options: { mapping: r.options.mapping, dateFormat: r.options.dateFormat, timezone: r.options.timezone, encoding: r.options.encoding },
    createdAt: iso(r.created_at),
    startedAt: iso(r.started_at),
    finishedAt: iso(r.finished_at),
  };
}
