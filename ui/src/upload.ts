import { ApiError, session } from './api';

/**
 * POST /v1/imports with the file itself as the text/csv body (the browser streams it from disk);
 * the JSON client in api.ts sends only JSON.
 */
export async function uploadCsv<T>(path: string, file: Blob): Promise<T> {
  const key = session.get();
  const res = await fetch(path, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'text/csv', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: file,
    credentials: 'omit',
    cache: 'no-store',
  });
  const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string; details?: Array<{ path?: string; message?: string }> } } | null;
  if (!res.ok) throw new ApiError(res.status, body?.error?.code ?? `http_${res.status}`, body?.error?.message ?? res.statusText, body?.error?.details ?? []);
  return body as T;
}

/** The cells of a CSV header line (quotes and doubled quotes, as csv-parse reads them). */
export function headerCells(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') (cur += '"'), i++;
      else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') out.push(cur), (cur = '');
    else cur += ch;
  }
  out.push(cur);
  return out.map((c) => c.replace(/^\uFEFF/, ''));
}
