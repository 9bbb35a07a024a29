import type { components, paths } from './api-types';

/**
 * The console's only way to the server: the public API, same origin, admin key as a Bearer header.
 * Request bodies are typed from the generated OpenAPI types (ui/src/api-types.ts, `npm run gen:api`);
 * a path the document does not describe yet falls back to an untyped body. The server's document
 * does not describe response bodies, so pages type what they read from API.md (see types.ts).
 */
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type ErrorBody = components['schemas']['Error'];
export type ErrorDetail = { path?: string; message?: string };

/** A path of the document with `{param}` placeholders filled in: "/v1/templates/{id}" -> `/v1/templates/${string}`. */
type Filled<P extends string> = P extends `${infer A}{${string}}${infer B}` ? `${A}${string}${Filled<B>}` : P;
type KnownPath<M extends Method> = { [P in keyof paths]: paths[P][M] extends { responses: unknown } ? P : never }[keyof paths] & string;
type BodyOf<P extends keyof paths, M extends Method> = paths[P][M] extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
/** The body a call takes: typed when the filled path matches a described operation. */
type Body<M extends Method, U extends string> = {
  [P in KnownPath<M>]: U extends Filled<P> ? BodyOf<P, M> : never;
}[KnownPath<M>] extends infer B
  ? [B] extends [never]
    ? unknown
    : B
  : unknown;

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public details: ErrorDetail[] = [],
  ) {
    super(message);
  }
}

const KEY = 'hark.key';
// sessionStorage: the key lives as long as the tab, is never put in a URL and never in localStorage.
export const session = {
  get: (): string | null => sessionStorage.getItem(KEY),
  set: (k: string) => sessionStorage.setItem(KEY, k),
  clear: () => sessionStorage.removeItem(KEY),
};

let onUnauthorized: () => void = () => {};
export const setUnauthorizedHandler = (f: () => void) => {
  onUnauthorized = f;
};

async function call<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const key = session.get();
  const res = await fetch(path, {
    method: method.toUpperCase(),
    headers: {
      accept: 'application/json',
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
    credentials: 'omit',
    cache: 'no-store',
  });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) {
    const err = (parsed as ErrorBody | null)?.error;
    if (res.status === 401) onUnauthorized();
    throw new ApiError(res.status, err?.code ?? 'http_' + res.status, err?.message ?? res.statusText, (err?.details as ErrorDetail[]) ?? []);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => call<T>('get', path),
  post: <T, U extends string = string>(path: U, body?: Body<'post', U>) => call<T>('post', path, body ?? {}),
  put: <T, U extends string = string>(path: U, body: Body<'put', U>) => call<T>('put', path, body),
  patch: <T, U extends string = string>(path: U, body: Body<'patch', U>) => call<T>('patch', path, body),
  delete: (path: string) => call<void>('delete', path),
};

export const enc = encodeURIComponent;
