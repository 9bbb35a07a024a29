import type { Knex } from 'knex';
import { DateTime } from 'luxon';
import { bindings } from '../db';
import { suppressedSet } from '../suppressions/repo';
import type { Settings } from '../workspaces/schema';

/**
 * The sending rules, shared by campaign fan-out (set-based, see campaigns/fanout-sql.ts, which
 * takes its quiet-hours deferrals from quietHoursByZone), automation enqueue and the re-check
 * just before each send. Order of precedence: no address, unsubscribed (consent or suppression
 * list), frequency cap, quiet hours (a deferral, not a skip).
 */
export type Channel = 'email' | 'sms';
export type SkipReason = 'unsubscribed' | 'no_address' | 'frequency_cap' | 'duplicate' | 'held_out';
export type QuietHours = NonNullable<Settings['quietHours']>;
export type FrequencyCap = NonNullable<Settings['frequencyCap']>;

type Conn = Knex | Knex.Transaction;

export const ADDRESS_COLUMN: Record<Channel, 'email' | 'phone'> = { email: 'email', sms: 'phone' };
export const CONSENT_COLUMN: Record<Channel, 'email_consent' | 'sms_consent'> = { email: 'email_consent', sms: 'sms_consent' };

/** Statuses that count against the frequency cap: what was sent, and (at enqueue) what will be. */
export const CAP_STATUSES_SENT = ['sending', 'sent', 'delivered', 'unknown'];
export const CAP_STATUSES_PLANNED = ['queued', ...CAP_STATUSES_SENT];

const minutes = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
};

/**
 * When `at` falls inside the quiet window read in zone `tz`, the end of that window (an instant);
 * otherwise null. Windows may span midnight (21:00-08:00).
 */
export function quietHoursEnd(quiet: QuietHours | null, tz: string, at: Date): Date | null {
  if (!quiet) return null;
  let local = DateTime.fromJSDate(at, { zone: tz });
  if (!local.isValid) local = DateTime.fromJSDate(at, { zone: 'UTC' });
  const now = local.hour * 60 + local.minute;
  const start = minutes(quiet.start);
  const end = minutes(quiet.end);
  const inside = start < end ? now >= start && now < end : now >= start || now < end;
  if (!inside) return null;
  let until = local.set({ hour: Math.floor(end / 60), minute: end % 60, second: 0, millisecond: 0 });
  if (until <= local) until = until.plus({ days: 1 });
  return until.toJSDate();
}

/** Deferrals per zone for a set-based insert: {zone: ISO instant} for the zones now in quiet hours. */
export function quietHoursByZone(quiet: QuietHours | null, zones: string[], at: Date): Record<string, string> {
  const out: Record<string, string> = {};
  for (const z of zones) {
    const until = quietHoursEnd(quiet, z, at);
    if (until) out[z] = until.toISOString();
  }
  return out;
}

/**
 * Customers (of these) who already reached the cap within its window. `planned` also counts
 * queued messages (at enqueue time, so two sends planned together cannot both pass); the
 * re-check before send counts only what was sent, excluding the messages being checked.
 */
export async function frequencyCapped(
  db: Conn,
  customerIds: string[],
  cap: FrequencyCap | null,
  now: Date,
  opts: { planned: boolean; excludeMessageIds?: string[] },
): Promise<Set<string>> {
  if (!cap || !customerIds.length) return new Set();
  const since = new Date(now.getTime() - cap.perDays * 86400_000);
  const { rows } = await db.raw(
    `SELECT customer_id FROM messages
      WHERE customer_id = ANY(?::bigint[]) AND status = ANY(?::text[])
        AND coalesce(sent_at, created_at) > ? AND NOT (id = ANY(?::bigint[]))
      GROUP BY customer_id HAVING count(*) >= ?`,
    bindings([customerIds, opts.planned ? CAP_STATUSES_PLANNED : CAP_STATUSES_SENT, since, opts.excludeMessageIds ?? [], cap.maxMessages]),
  );
  return new Set((rows as Array<{ customer_id: string }>).map((r) => String(r.customer_id)));
}

export interface RuleSubject {
  key: string; // message id, or any caller key
  customerId: string | null;
  channel: Channel;
  /** The address the outbox row fixed (dedup key); else the customer's current one. */
  address?: string | null;
}

export type RuleVerdict = { action: 'send'; address: string } | { action: 'skip'; reason: SkipReason } | { action: 'defer'; until: Date; address: string };

/**
 * Evaluates every rule for a set of (customer, channel) subjects of one workspace, reading the
 * customers' current address, consent and time zone: a handful of queries for the whole set.
 */
export async function evaluateRules(
  db: Conn,
  workspace: { id: string; settings: Settings },
  subjects: RuleSubject[],
  now: Date,
  opts: { planned: boolean; excludeMessageIds?: string[] },
): Promise<Map<string, RuleVerdict>> {
  const ids = [...new Set(subjects.map((s) => s.customerId).filter((x): x is string => !!x))];
  const customers = new Map<string, RuleCustomer>();
  if (ids.length) {
    const rows = await db('customers').where('workspace_id', workspace.id).whereIn('id', ids).select('id', 'email', 'phone', 'email_consent', 'sms_consent', 'timezone');
    for (const r of rows) customers.set(String(r.id), r);
  }
  const addressOf = (s: RuleSubject) => sendAddress(s.channel, s.customerId ? customers.get(s.customerId) : undefined, s.address);
  const suppressed = new Map<Channel, Set<string>>();
  for (const ch of ['email', 'sms'] as const) {
    const addrs = subjects.filter((s) => s.channel === ch).map(addressOf).filter((a): a is string => !!a);
    suppressed.set(ch, await suppressedSet(db, workspace.id, ch, addrs));
  }
  const capped = await frequencyCapped(db, ids, workspace.settings.frequencyCap, now, opts);
  const out = new Map<string, RuleVerdict>();
  for (const s of subjects) {
    const c = s.customerId ? customers.get(s.customerId) : undefined;
    const address = addressOf(s);
    out.set(s.key, verdictFor(s.channel, c, address, !!address && suppressed.get(s.channel)!.has(address), capped.has(s.customerId ?? ''), workspace.settings, now));
  }
  return out;
}

/**
 * Where a message goes: the address its outbox row fixed (the dedup key), else the customer's
 * current one; null when the customer's current address was cleared (or the customer erased),
 * so nobody is messaged at an old address.
 */
export function sendAddress(channel: Channel, c: RuleCustomer | undefined, fixed?: string | null): string | null {
  const current = c ? (c[ADDRESS_COLUMN[channel]] ?? null) : null;
  return current ? (fixed ?? current) : null;
}

/** The fields of a customer row the rules read. */
export interface RuleCustomer {
  email: string | null;
  phone: string | null;
  email_consent: string | null;
  sms_consent: string | null;
  timezone: string | null;
}

/**
 * One verdict once the facts are known, in the order of precedence above: no customer or no
 * address, unsubscribed (consent or suppression list), frequency cap, quiet hours (a deferral).
 */
export function verdictFor(
  channel: Channel,
  c: RuleCustomer | undefined,
  address: string | null,
  suppressed: boolean,
  capped: boolean,
  settings: Pick<Settings, 'quietHours' | 'timezone'>,
  now: Date,
): RuleVerdict {
  if (!c || !address) return { action: 'skip', reason: 'no_address' };
  if (c[CONSENT_COLUMN[channel]] === 'unsubscribed' || suppressed) return { action: 'skip', reason: 'unsubscribed' };
  if (capped) return { action: 'skip', reason: 'frequency_cap' };
  const until = quietHoursEnd(settings.quietHours, c.timezone ?? settings.timezone, now);
  return until ? { action: 'defer', until, address } : { action: 'send', address };
}
