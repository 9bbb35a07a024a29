import { TextDecoder } from 'node:util';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse/sync';
import type { Db } from '../db';
import { AppError } from '../errors';
import * as repo from './repo';
import { resolveHeader } from './rows';
import type { ImportKind, ImportOptions } from './schema';

/** Pieces of the file as stored in import_chunks. */
export const CHUNK_BYTES = 1024 * 1024;

export class FileChecks {
  private readonly decoder: TextDecoder;
  private header = '';
  private headerDone = false;
  private newlines = 0;
  /** Something other than blanks after the header line. */
  hasRows = false;

  constructor(
    private readonly kind: ImportKind,
    private readonly opts: ImportOptions,
  ) {
    // fatal: a byte sequence that is not the declared encoding is an error, not a U+FFFD.
    this.decoder = new TextDecoder(opts.encoding, { fatal: true });
  }

  /** Checks the next bytes as they arrive; throws the 400/422 an upload answers. */
  push(buf: Buffer, last = false): void {
    let text: string;
    try {
      text = this.decoder.decode(buf, { stream: !last });
    } catch {
      // The line of the first bad byte: the piece read again, leniently, up to its first U+FFFD.
      const lenient = new TextDecoder(this.opts.encoding).decode(buf);
      const before = lenient.slice(0, Math.max(0, lenient.indexOf('\uFFFD')));
      const line = this.newlines + 1 + (before.match(/\n/g)?.length ?? 0);
      throw new AppError('validation_failed', `the file is not valid ${this.opts.encoding} near line ${line}`, [
        { path: 'body', message: this.opts.encoding === 'utf-8' ? 'export the file as UTF-8, or name its encoding with ?encoding=windows-1252 (or latin1)' : `not ${this.opts.encoding}` },
      ]);
    }
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) this.newlines++;
    if (!this.headerDone) {
      const nl = text.indexOf('\n');
      this.header += nl === -1 ? text : text.slice(0, nl);
      if (this.header.length > 65536) throw new AppError('unprocessable', 'the header line is longer than 64 KB', [{ path: 'header', message: 'is this a CSV file?' }]);
      if (nl === -1 && !last) return;
      this.headerDone = true;
      this.checkHeader();
      text = nl === -1 ? '' : text.slice(nl + 1);
    }
    if (!this.hasRows && /\S/.test(text)) this.hasRows = true;
  }

  private checkHeader() {
    let cells: string[];
    try {
      cells = (parseCsv(this.header.replace(/\r$/, ''), { relax_column_count: true }) as string[][])[0] ?? [];
    } catch (err) {
      throw new AppError('validation_failed', 'the header line is not valid CSV', [{ path: 'header', message: (err as Error).message.slice(0, 200) }]);
    }
    if (!cells.length || cells.every((c) => !c.trim())) throw new AppError('unprocessable', 'the file has no header row', [{ path: 'header', message: 'the first line must name the columns' }]);
    resolveHeader(this.kind, cells, this.opts.mapping);
  }
}

/**
 * Streams a request body into import_chunks, 1 MB at a time, awaiting each insert before reading
 * on (backpressure: the file is never whole in memory). The header is checked from the first
 * piece, the encoding throughout, the size against `maxBytes`. Any refusal drops what was stored.
 */
export async function receiveFile(db: Db, importId: string, body: Readable, kind: ImportKind, opts: ImportOptions, maxBytes: number) {
  const checks = new FileChecks(kind, opts);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let bytes = 0;
  let seq = 0;
  const flush = async () => {
    if (!pendingBytes) return;
    const data = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    await repo.appendChunk(db, importId, seq++, data);
  };
  try {
    for await (const piece of body as AsyncIterable<Buffer>) {
      bytes += piece.length;
      if (bytes > maxBytes) throw new AppError('payload_too_large', `an import file may be at most ${maxBytes} bytes`);
      checks.push(piece);
      pending.push(piece);
      pendingBytes += piece.length;
      if (pendingBytes >= CHUNK_BYTES) await flush();
    }
    checks.push(Buffer.alloc(0), true);
    if (!bytes) throw new AppError('validation_failed', 'the body is empty', [{ path: 'body', message: 'send the CSV file as the body' }]);
    if (!checks.hasRows) throw new AppError('unprocessable', 'the file has a header and no rows', [{ path: 'body', message: 'nothing to import' }]);
    await flush();
    await repo.markQueued(db, importId, bytes, seq);
  } catch (err) {
    await repo.dropImport(db, importId);
    throw err;
  }
}
