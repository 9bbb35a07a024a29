import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import { Metrics, trackRequest } from '../ops/metrics';
import type { AuthContext, Scope } from './auth';
import { errorAnswer } from './errors';

/** What a JSON endpoint answers: a status and a body to serialise. */
export interface JsonAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export interface FastRoute {
  /** The key scope the route needs, as its guard in the router says. */
  scope: Scope;
  handle(auth: AuthContext, body: unknown): Promise<JsonAnswer>;
}

export interface FastOptions {
  /** BODY_LIMIT in bytes. */
  limit: number;
  authenticate(req: { headers: IncomingHttpHeaders }, scope: Scope): Promise<AuthContext>;
  metrics: Metrics;
  logger: Logger;
}

/** The headers every answer of the app carries (the app's first middleware sets them too). */
export const SECURITY_HEADERS: ReadonlyArray<[string, string]> = [
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
];

const PLAIN_JSON = new Set(['application/json', 'application/json; charset=utf-8', 'application/json;charset=utf-8']);

/** "2mb", "512kb" (validated by the config schema) in bytes, as body-parser reads them. */
export function limitBytes(limit: string): number {
  const m = /^(\d+)(kb|mb)$/i.exec(limit);
  if (!m) throw new Error(`body limit ${limit} is not like 2mb or 512kb`);
  return Number(m[1]) * (m[2]!.toLowerCase() === 'mb' ? 1024 * 1024 : 1024);
}

function send(res: ServerResponse, a: JsonAnswer) {
  if (res.headersSent) return;
  const json = JSON.stringify(a.body);
  res.statusCode = a.status;
  for (const [k, v] of Object.entries(a.headers ?? {})) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

/**
 * The ingest endpoints (hundreds of requests a second from tills) ahead of express: its router
 * walking the middleware and every mounted router, type-is, raw-body and body-parser were about
 * a third of the server's CPU per single purchase. For a plain request (POST with exactly the
 * route's path, `application/json` in UTF-8, a Content-Length within the limit, no
 * Content-Encoding) this does what the express chain does, in its order: security headers and
 * metrics, check the key (401/403, and its rate limit: 429) as the request arrives, read and
 * parse the body only for a request that passed (400 invalid_json), then the route's handler (which validates with the same zod schema), and errors become the same bodies
 * (errorAnswer). It returns false for any other request (another method, path, content type or
 * encoding, a chunked, empty or oversized body, a query string), which express then serves as
 * before: the routers keep these routes.
 */
export function fastJsonRoutes(routes: Record<string, FastRoute>, opts: FastOptions) {
  const table = new Map(Object.entries(routes));
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST') return false;
    const path = req.url ?? '';
    const route = table.get(path);
    if (!route) return false;
    const h = req.headers;
    const length = Number(h['content-length']);
    const plain =
      length > 0 && length <= opts.limit && h['transfer-encoding'] === undefined && (h['content-encoding'] === undefined || h['content-encoding'] === 'identity') &&
      PLAIN_JSON.has((h['content-type'] ?? '').toLowerCase());
    if (!plain) return false;

    for (const [k, v] of SECURITY_HEADERS) res.setHeader(k, v);
    trackRequest(opts.metrics, req, res, () => path);
    // The key is checked from the headers while the body arrives; a refused request is answered
    // at once and its body is neither kept nor parsed.
    let refused = false;
    const chunks: Buffer[] = [];
    const authed = opts.authenticate(req, route.scope);
    authed.catch((err: unknown) => {
      refused = true;
      chunks.length = 0;
      send(res, errorAnswer(err, req, opts.logger));
    });
    req.on('data', (c: Buffer) => {
      if (!refused) chunks.push(c);
    });
    req.once('end', () => {
      if (refused) return;
      void (async () => {
        const auth = await authed;
        let raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) raw = raw.subarray(3); // a UTF-8 BOM, as body-parser drops it
        let body: unknown;
        try {
          body = JSON.parse(raw.toString('utf8'));
        } catch {
          throw new AppError('invalid_json', 'request body is not valid JSON');
        }
        send(res, await route.handle(auth, body));
      })().catch((err: unknown) => {
        if (!refused) send(res, errorAnswer(err, req, opts.logger));
      });
    });
    return true;
  };
}
