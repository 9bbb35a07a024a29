import { notFound } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string): boolean => UUID.test(s);

/** An id that cannot exist is answered as an unknown one: 404, never a database error. */
export function uuidOr404(s: string | undefined, what: string): string {
  if (!s || !isUuid(s)) throw notFound(what);
  return s.toLowerCase();
}
