import { statsView, StatsRow } from './stats';

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);
const date = (d: Date | string | null | undefined) => {
  if (!d) return null;
  if (typeof d === 'string') return d.slice(0, 10);
  // DATE columns come back as local-midnight Dates; rebuild the calendar date from local parts.
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
};

/** The API's customer object. */
/** `suppressions`, when given, lists the channels whose address is on the suppression list. */
export function customerView(c: Record<string, any>, stats: StatsRow | undefined, now: Date, suppressions?: Array<{ channel: string }>) {
  return {
    id: String(c.id),
    externalId: c.external_id,
    email: c.email,
    phone: c.phone,
    firstName: c.first_name,
    lastName: c.last_name,
    birthDate: date(c.birth_date),
    gender: c.gender,
    city: c.city,
    region: c.region,
    country: c.country,
    postalCode: c.postal_code,
    timezone: c.timezone,
    emailConsent: c.email_consent,
    emailConsentAt: iso(c.email_consent_at),
    smsConsent: c.sms_consent,
    smsConsentAt: iso(c.sms_consent_at),
    attributes: c.attributes ?? {},
    createdAt: iso(c.created_at),
    updatedAt: iso(c.updated_at),
    ...(suppressions ? { suppressed: { email: suppressions.some((s) => s.channel === 'email'), sms: suppressions.some((s) => s.channel === 'sms') } } : {}),
    ...(stats ? { stats: statsView(stats, now) } : {}),
  };
}
