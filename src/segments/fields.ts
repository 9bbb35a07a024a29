import type { Op } from './schema';

/**
 * The allow-list of fields a rule may name. A field name from a request is only ever a key into
 * this table; the SQL identifiers below are constants. `c` is customers, `s` customer_stats.
 */
export type Table = 'c' | 's';
export type FieldSql =
  /** bpchar: a char(n) column (country), compared as char(n) so that its statistics and indexes apply. */
  | { kind: 'text'; table: Table; column: string; bpchar?: true }
  | { kind: 'num'; table: Table; column: string }
  /** Whole days elapsed since a timestamp, counted like daysSinceLastPurchase in the API. */
  | { kind: 'days'; table: Table; column: string }
  /** Full years since birth_date. */
  | { kind: 'age' }
  /** total_spent / purchase_count, null without purchases. */
  | { kind: 'aov' };

export interface FieldDef {
  name: string;
  type: 'string' | 'number';
  source: 'profile' | 'stats' | 'prediction';
  sql: FieldSql;
  /** A purchase-based figure: customers without purchases have no rank in topPercent/bottomPercent. */
  needsPurchase?: boolean;
  /** Largest magnitude a compared value may have (days and years are turned into dates). */
  max: number;
  /** An integer column: whole values are compared as integers, so that its indexes apply. */
  int?: boolean;
  /**
   * A profile column that customer_stats carries a copy of (migration 0023, kept by triggers):
   * a count over customer_stats alone reads it there (count.ts).
   */
  statsCopy?: true;
  description: string;
}

const text = (name: string, column: string, description: string, table: Table = 'c', source: FieldDef['source'] = 'profile'): FieldDef => ({
  name, type: 'string', source, sql: { kind: 'text', table, column }, max: 0, description,
});
const stat = (name: string, column: string, description: string, needsPurchase = true, source: FieldDef['source'] = 'stats'): FieldDef => ({
  name, type: 'number', source, sql: { kind: 'num', table: 's', column }, needsPurchase, max: 1e12, description,
});
const days = (name: string, table: Table, column: string, description: string, source: FieldDef['source']): FieldDef => ({
  name, type: 'number', source, sql: { kind: 'days', table, column }, max: 100000, description,
});

export const FIELDS: readonly FieldDef[] = [
  text('email', 'email', 'Email address (lower-case)'),
  text('phone', 'phone', 'Phone number in E.164'),
  { ...text('emailConsent', 'email_consent', '"subscribed" or "unsubscribed"'), statsCopy: true },
  { ...text('smsConsent', 'sms_consent', '"subscribed" or "unsubscribed"'), statsCopy: true },
  { name: 'age', type: 'number', source: 'profile', sql: { kind: 'age' }, max: 1000, description: 'Full years since birthDate', statsCopy: true },
  { ...text('gender', 'gender', 'Gender as given'), statsCopy: true },
  text('city', 'city', 'City'),
  text('region', 'region', 'Region or state'),
  { ...text('country', 'country', 'ISO-3166 alpha-2 country code'), sql: { kind: 'text', table: 'c', column: 'country', bpchar: true }, statsCopy: true },
  text('postalCode', 'postal_code', 'Postal code'),
  text('timezone', 'timezone', 'IANA time zone'),
  days('createdDaysAgo', 'c', 'created_at', 'Whole days since the customer was created', 'profile'),
  { ...stat('purchaseCount', 'purchase_count', 'Number of purchases'), int: true },
  stat('totalSpent', 'total_spent', 'Total spent, net of refunds'),
  { name: 'avgOrderValue', type: 'number', source: 'stats', sql: { kind: 'aov' }, needsPurchase: true, max: 1e12, description: 'totalSpent / purchaseCount' },
  days('daysSinceLastPurchase', 's', 'last_purchase_at', 'Whole days since the last purchase (none without purchases)', 'stats'),
  days('daysSinceFirstPurchase', 's', 'first_purchase_at', 'Whole days since the first purchase', 'stats'),
  stat('avgDaysBetweenPurchases', 'avg_gap_days', 'Average days between purchases (2+ purchases)', false),
  { ...stat('purchases90d', 'purchases_90d', 'Purchases in the last 90 days'), int: true },
  stat('spent90d', 'spent_90d', 'Spent in the last 90 days'),
  text('topCategory', 'top_category', 'Category with the most spend', 's', 'stats'),
  stat('pAlive', 'p_alive', 'Probability the customer is still active (predictions)', false, 'prediction'),
  stat('churnRisk', 'churn_risk', 'Churn risk 0-1 (predictions)', false, 'prediction'),
  stat('expectedPurchases90d', 'expected_purchases_90d', 'Expected purchases in the next 90 days (predictions)', false, 'prediction'),
  stat('predictedSpend365d', 'predicted_spend_365d', 'Predicted spend in the next 365 days (predictions)', false, 'prediction'),
  stat('leadScore', 'lead_score', 'Lead score (scoring rules)', false, 'prediction'),
];

const byName = new Map(FIELDS.map((f) => [f.name, f]));

/** attributes.<key>: keys are letters, digits, _ and -, and reach SQL only as bound values. */
export const ATTRIBUTE_KEY = /^[A-Za-z0-9_-]{1,100}$/;
export const ATTRIBUTE_PREFIX = 'attributes.';

export const OPS_BY_TYPE: Record<'string' | 'number' | 'attribute', readonly Op[]> = {
  string: ['eq', 'neq', 'in', 'notIn', 'contains', 'exists', 'notExists'],
  number: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'in', 'notIn', 'exists', 'notExists', 'topPercent', 'bottomPercent'],
  attribute: ['eq', 'neq', 'gt', 'gte', 'lt', 'lte', 'between', 'in', 'notIn', 'contains', 'exists', 'notExists'],
};

export type ResolvedField = { attribute: false; def: FieldDef } | { attribute: true; key: string };

/** Looks a field name up in the allow-list; undefined for anything else. */
export function resolveField(name: string): ResolvedField | undefined {
  const def = byName.get(name);
  if (def) return { attribute: false, def };
  if (name.startsWith(ATTRIBUTE_PREFIX)) {
    const key = name.slice(ATTRIBUTE_PREFIX.length);
    if (ATTRIBUTE_KEY.test(key)) return { attribute: true, key };
  }
  return undefined;
}

/** GET /v1/segments/fields */
export function fieldList() {
  return [
    ...FIELDS.map((f) => ({ name: f.name, type: f.type, source: f.source, ops: OPS_BY_TYPE[f.type], description: f.description })),
    {
      name: 'attributes.<key>',
      type: 'attribute',
      source: 'profile',
      ops: OPS_BY_TYPE.attribute,
      description: 'A custom attribute; compared by the type of the value (string, number or boolean). Keys: letters, digits, _ and -.',
    },
  ];
}
