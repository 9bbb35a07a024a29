import type { NextFunction, Request, Response } from 'express';
import { AppError } from '../errors';
import type { Logger } from '../logger';

/** Body-parser errors carry a `type`; map them to the API's codes. */
function fromParserError(err: { type?: string; status?: number }): AppError | null {
  switch (err.type) {
    case 'entity.parse.failed':
      return new AppError('invalid_json', 'request body is not valid JSON');
    case 'entity.too.large':
      return new AppError('payload_too_large', 'request body is too large');
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return new AppError('unsupported_media_type', 'unsupported body encoding');
    default:
      return null;
  }
}

function isDependencyDown(err: unknown): boolean {
  const e = err as { code?: string; message?: string; name?: string };
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', '57P01', '57P03', '53300'].includes(e.code ?? '') ||
    /Knex: Timeout acquiring a connection|Connection is closed|Reached the max retries|Redis connection is not ready/.test(e.message ?? '')
  );
}

/** The API's answer to an error: its status and error body (unexpected errors are logged here). */
export function errorAnswer(err: unknown, req: { method?: string; url?: string }, logger: Logger): { status: number; body: unknown; headers?: Record<string, string> } {
  let appErr: AppError;
  const path = req.url?.split('?')[0];
  if (err instanceof AppError) appErr = err;
  else if (err && typeof err === 'object' && 'type' in err && fromParserError(err as { type: string })) {
    appErr = fromParserError(err as { type: string })!;
  } else if ((err as { code?: string }).code === '22003') {
    // numeric_value_out_of_range: each value was within its limit, but a running total (a
    // customer's lifetime spend) would leave its column's range. Bad input, not a fault.
    appErr = new AppError('unprocessable', 'a total would exceed the largest amount hark stores');
  } else if ((err as { code?: string }).code === '57014') {
    // query_canceled: the statement ran past STATEMENT_TIMEOUT_MS (or an operator cancelled it).
    logger.warn({ path, method: req.method }, 'query timed out');
    appErr = new AppError('query_timeout', 'the query took longer than this server allows; narrow it or retry later');
  } else if (isDependencyDown(err)) {
    logger.error({ err: (err as Error).message, path }, 'dependency unavailable');
    appErr = new AppError('dependency_unavailable', 'a dependency (database or queue) is unavailable');
  } else {
    logger.error({ err, path, method: req.method }, 'unhandled error');
    appErr = new AppError('internal', 'internal error');
  }
  return { status: appErr.status, body: { error: { code: appErr.code, message: appErr.message, details: appErr.details } }, headers: appErr.headers };
}

export function errorHandler(logger: Logger) {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const a = errorAnswer(err, { method: req.method, url: req.originalUrl }, logger);
    if (res.headersSent) return;
    if (a.headers) res.set(a.headers);
    res.status(a.status).json(a.body);
  };
}

/** JSON only: a body with another content type is a 415, before any parsing. */
export function requireJson(req: Request, _res: Response, next: NextFunction) {
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!['POST', 'PUT', 'PATCH'].includes(req.method) || !hasBody) return next();
  if (!req.is('application/json')) return next(new AppError('unsupported_media_type', 'request body must be application/json'));
  next();
}
