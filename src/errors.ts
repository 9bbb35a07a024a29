/**
 * One registry of stable error codes, each with its HTTP status (after fastify's FST_ERR_*).
 * Routes and services throw AppError; the error middleware turns it into the API's error body.
 */
export const ERRORS = {
  invalid_json: 400,
  validation_failed: 400,
  invalid_cursor: 400,
  invalid_token: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  unprocessable: 422,
  rate_limited: 429,
  dependency_unavailable: 503,
  query_timeout: 503,
  internal: 500,
} as const;

export type ErrorCode = keyof typeof ERRORS;

export interface ErrorDetail {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** Response headers the error calls for (Retry-After on a 429). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = ERRORS[code];
  }
}

export const notFound = (what: string) => new AppError('not_found', `${what} not found`);
