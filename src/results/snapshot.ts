import type { Knex } from 'knex';

/**
 * The send-time snapshot on a message row (messages.snapshot), read by the reports. Campaign
 * fan-out and automation sends write it when they insert the row; the reports never look at the
 * customer's current profile, so a customer who moves city later still counts where they were.
 *
 * Keys (all optional; a missing key reports as "unknown"):
 *   segmentIds: string[]  the campaign's segments the customer matched (else all its segmentIds)
 *   ageBand:    '18-24' | '25-34' | '35-44' | '45-54' | '55-64' | '65+' | 'under 18' | null
 *   city, gender, region, country: string | null
 * (The report also accepts `age` (number) or `birthDate` (YYYY-MM-DD) in place of ageBand.)
 */
export interface MessageSnapshot {
  segmentIds?: string[];
  ageBand?: string | null;
  city?: string | null;
  gender?: string | null;
  region?: string | null;
  country?: string | null;
}

export const AGE_BANDS = ['under 18', '18-24', '25-34', '35-44', '45-54', '55-64', '65+', 'unknown'] as const;

/** The youngest age of each band after 'under 18': band i + 1 starts at AGE_BAND_FLOORS[i]. */
const AGE_BAND_FLOORS = [18, 25, 35, 45, 55, 65];

/** The band of an age: the one after as many bands as floors at or below it. */
export function ageBandOf(age: number | null | undefined): string | null {
  if (age === null || age === undefined || !Number.isFinite(age)) return null;
  return AGE_BANDS[AGE_BAND_FLOORS.filter((b) => age >= b).length]!;
}

/**
 * ageBandOf in SQL, over an age expression (NULL for a NULL age): width_bucket counts the floors
 * at or below it. Fan-out writes it into the snapshot; reports use it for snapshots without one.
 */
export function ageBandSql(age: string): string {
  const bands = AGE_BANDS.slice(0, AGE_BAND_FLOORS.length + 1).map((b) => `'${b}'`);
  return `(ARRAY[${bands.join(', ')}])[width_bucket(${age}, ARRAY[${AGE_BAND_FLOORS.join(', ')}]) + 1]`;
}

/** Whole years between a YYYY-MM-DD birth date and `at` (UTC calendar). */
export function ageAt(birthDate: string | Date | null | undefined, at: Date): number | null {
  if (!birthDate) return null;
  const b = typeof birthDate === 'string' ? new Date(`${birthDate.slice(0, 10)}T00:00:00Z`) : birthDate;
  if (Number.isNaN(b.getTime())) return null;
  let years = at.getUTCFullYear() - b.getUTCFullYear();
  if (at.getUTCMonth() < b.getUTCMonth() || (at.getUTCMonth() === b.getUTCMonth() && at.getUTCDate() < b.getUTCDate())) years--;
  return years;
}

/** For code that has the customer row in hand (automation sends). */
export function snapshotOf(
  c: { birth_date?: string | Date | null; city?: string | null; gender?: string | null; region?: string | null; country?: string | null },
  segmentIds: string[],
  now: Date,
): MessageSnapshot {
  return { segmentIds, ageBand: ageBandOf(ageAt(c.birth_date ?? null, now)), city: c.city ?? null, gender: c.gender ?? null, region: c.region ?? null, country: c.country ?? null };
}

/**
 * The same snapshot as a SQL expression, for set-based fan-out
 * (INSERT INTO messages (..., snapshot) SELECT ..., <this> FROM customers c ...).
 * `alias` is the customers alias (an identifier of the caller's code, never user input);
 * `segmentIdsSql` a SQL expression yielding a jsonb array (e.g. a bound `?::jsonb`).
 */
export function snapshotSql(knex: Knex | Knex.Transaction, alias: string, segmentIds: string[], now: Date): Knex.Raw {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error('bad alias');
  const age = `extract(year FROM age((?::timestamptz AT TIME ZONE 'UTC')::date, ${alias}.birth_date))`;
  return knex.raw(
    `jsonb_build_object('segmentIds', ?::jsonb,
       'ageBand', (SELECT CASE WHEN a IS NULL THEN NULL WHEN a < 18 THEN 'under 18' WHEN a < 25 THEN '18-24'
                   WHEN a < 35 THEN '25-34' WHEN a < 45 THEN '35-44' WHEN a < 55 THEN '45-54'
                   WHEN a < 65 THEN '55-64' ELSE '65+' END FROM (SELECT ${age} AS a) x),
       'city', ${alias}.city, 'gender', ${alias}.gender, 'region', ${alias}.region, 'country', ${alias}.country)`,
    [JSON.stringify(segmentIds), now],
  );
}
