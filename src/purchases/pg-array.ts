const NEEDS_ESCAPE = /[\\"]/;

/**
 * A Postgres array literal, for a `?::text[]` (or bigint[], numeric[], timestamptz[], jsonb[])
 * parameter. node-postgres builds the same literal element by element (a type dispatch and two
 * regex replaces per string), which was a fifth of a 1,000-purchase batch's CPU in Node. Every
 * string element is quoted, so any text is safe: inside quotes only backslash and double quote
 * need escaping. Numbers are written as JavaScript prints them (finite, as the schemas admit).
 */
export function pgArray(values: ReadonlyArray<string | number | null | undefined>): string {
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (typeof v === 'number') out += String(v);
    else out += NEEDS_ESCAPE.test(v) ? `"${v.replace(/[\\"]/g, '\\$&')}"` : `"${v}"`;
  }
  return out + '}';
}

/** Sorts bigint ids (decimal strings without sign or leading zeros) numerically, without BigInt. */
export const byBigintId = (x: string, y: string) => x.length - y.length || (x < y ? -1 : x > y ? 1 : 0);
