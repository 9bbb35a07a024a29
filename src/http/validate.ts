import { z } from 'zod';
import { AppError, ErrorDetail } from '../errors';

export function zodDetails(error: z.ZodError, prefix: (string | number)[] = []): ErrorDetail[] {
  return error.issues.map((i) => ({
    path: [...prefix, ...i.path].map(String).join('.') || '(root)',
    message: i.message,
  }));
}

/** Parses input with a schema, or throws a 400 naming each offending path. */
export function parse<T extends z.ZodType>(schema: T, input: unknown, what = 'request body'): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) throw new AppError('validation_failed', `${what} is invalid`, zodDetails(r.error));
  return r.data;
}

/** For batches: the row's first problem as one line, reported by index. */
export function firstIssue(error: z.ZodError): { code: string; message: string; details: ErrorDetail[] } {
  const details = zodDetails(error);
  return { code: 'validation_failed', message: `${details[0]!.path}: ${details[0]!.message}`, details };
}

export const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(50),
  cursor: z.string().max(200).optional(),
});

/**
 * The keyset cursor of lists ordered by (created_at, id): both parts checked here, so that a
 * forged cursor is a 400 and never reaches a `?::timestamptz` / `?::uuid` cast (a 500, or a
 * word like 'yesterday' that Postgres reads as a time).
 */
export const timeIdCursor = z.object({ t: z.iso.datetime({ offset: true }), id: z.uuid() });

export function encodeCursor(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/**
 * A list answer's page: the first `limit` of `rows` (queried with one more than the limit) and
 * the cursor after its last row when more follow, made by `cursorOf` (byCreated or byId).
 */
export function pageOf<R>(rows: R[], limit: number, cursorOf: (last: NoInfer<R>) => unknown): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { page, nextCursor: rows.length > limit && last !== undefined ? encodeCursor(cursorOf(last)) : null };
}

/** Cursor of a list ordered by creation time, then id. */
export const byCreated = (r: { created_at: Date | string; id: string }) => ({ t: new Date(r.created_at).toISOString(), id: r.id });
/** Cursor of a list ordered by id alone. */
export const byId = (r: { id: string | number | bigint }) => ({ id: String(r.id) });

export function decodeCursor<T extends z.ZodType>(schema: T, cursor: string | undefined): z.infer<T> | undefined {
  if (cursor === undefined) return undefined;
  try {
    const r = schema.safeParse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
    if (r.success) return r.data;
  } catch {
    /* fall through */
  }
  throw new AppError('invalid_cursor', 'cursor is not one this API returned');
}
