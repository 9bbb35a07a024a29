import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../errors';
import { errorAnswer } from '../http/errors';
import { SECURITY_HEADERS } from '../http/fast';
import type { Logger } from '../logger';
import { Metrics, trackRequest } from '../ops/metrics';
import type { ConnectorService } from './service';

/** Platforms' webhooks are at most 1 MB here (Shopify's own payloads stay well below). */
export const CONNECT_LIMIT_BYTES = 1024 * 1024;
const PATH = /^\/connect\/([a-z0-9-]{1,40})\/([^/?#]{1,100})$/;

/** The raw body, at most `limit` bytes: a larger Content-Length is refused before reading, a larger stream while reading. */
function readLimited(req: IncomingMessage, limit: number): Promise<Buffer> {
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return Promise.reject(new AppError('unsupported_media_type', 'compressed bodies are not accepted here'));
  if (Number(req.headers['content-length'] ?? 0) > limit) return Promise.reject(new AppError('payload_too_large', 'request body is too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void chunks.push(c);
      // Answered at once: the rest is not read (the connection closes after the answer).
      req.off('data', onData);
      req.pause();
      reject(new AppError('payload_too_large', 'request body is too large'));
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/**
 * POST /connect/:type/:id ahead of express (as src/http/fast.ts serves the ingest endpoints): a
 * platform's burst of webhooks pays for no middleware chain or body parser. The connector is found
 * before the body is read; the body is read raw, within the limit; then the service verifies,
 * stores and queues. Errors become the API's error bodies. Returns false for any other request.
 */
export function connectorIngress(service: ConnectorService, opts: { metrics: Metrics; logger: Logger }) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST') return false;
    const m = PATH.exec(req.url ?? '');
    if (!m) return false;
    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    trackRequest(opts.metrics, req, res, () => '/connect/:type/:id');
    const send = (a: { status: number; body: unknown }) => {
      if (res.headersSent) return;
      const json = JSON.stringify(a.body);
      res.statusCode = a.status;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(json));
      res.end(json);
    };
    void (async () => {
      const connector = await service.find(m[1]!, m[2]!);
      const body = await readLimited(req, CONNECT_LIMIT_BYTES);
      send(await service.receive(connector, m[2]!.toLowerCase(), body, req.headers));
    })().catch((err: unknown) => {
      // A body left unread (unknown connector, too large) is not drained: the connection closes after the answer.
      if (!req.complete && !res.headersSent) res.setHeader('Connection', 'close');
      send(errorAnswer(err, req, opts.logger));
    });
    return true;
  };
}
