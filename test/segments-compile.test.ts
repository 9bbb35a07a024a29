import knex from 'knex';
import { compileQuery } from '../src/segments/compile';
import { compileCount } from '../src/segments/count';
import { checkTree } from '../src/segments/validate';
import type { SegmentNode } from '../src/segments/schema';

/** The compiler's SQL text and bindings (no database): identifiers are constants, values bound. */
const k = knex({ client: 'pg' });
const WS = '11111111-1111-1111-1111-111111111111';
const NOW = new Date('2026-06-01T12:00:00Z');
const sql = (node: SegmentNode) => compileQuery(k, node, { workspaceId: WS, now: NOW, segments: new Map() }).toSQL().toNative();

afterAll(() => k.destroy());

test('when a stacked rule is compiled, then it is one query over customers and stats with every value bound', () => {
  const q = sql({ all: [{ field: 'country', op: 'eq', value: 'US' }, { any: [{ field: 'totalSpent', op: 'gte', value: 100 }, { not: { field: 'email', op: 'contains', value: "x' OR 1=1--" } }] }] });
  expect(q.sql).toBe(
    'select "c"."id" as "customer_id" from "customers" as "c" left join "customer_stats" as "s" on "s"."customer_id" = "c"."id" and "s"."workspace_id" = "c"."workspace_id" ' +
      'where "c"."workspace_id" = $1 and ((c.country = $2::bpchar) AND ((s.total_spent >= $3::numeric) OR NOT coalesce((strpos(lower(c.email), lower($4::text)) > 0), false)))',
  );
  expect(q.bindings).toEqual([WS, 'US', 100, "x' OR 1=1--"]);
});

test('when a day count is compared, then it becomes a range on the stored timestamp', () => {
  const q = sql({ field: 'daysSinceLastPurchase', op: 'between', value: [31, 90] });
  expect(q.sql).toContain('(s.last_purchase_at <= $2::timestamptz AND s.last_purchase_at > $3::timestamptz)');
  expect(q.bindings.slice(1)).toEqual([new Date(NOW.getTime() - 31 * 86400000), new Date(NOW.getTime() - 91 * 86400000)]);
});

test('when purchased has a category and minCount, then it is a grouped subquery on items in the window', () => {
  const q = sql({ purchased: { category: 'books', withinDays: 365, minCount: 2 } });
  expect(q.sql).toContain('c.id IN (SELECT x.customer_id FROM purchase_items x WHERE (x.workspace_id = $2 AND x.category = $3 AND x.occurred_at > $4::timestamptz) GROUP BY x.customer_id HAVING (count(DISTINCT x.purchase_id) >= $5))');
  expect(q.bindings).toEqual([WS, WS, 'books', new Date(NOW.getTime() - 366 * 86400000), 2]);
});

test('when an event with no minCount is compiled, then it is a correlated EXISTS scoped to the workspace', () => {
  const q = sql({ event: { type: 'email_open', withinDays: 60 } });
  expect(q.sql).toContain('EXISTS (SELECT 1 FROM events x WHERE x.customer_id = c.id AND (x.workspace_id = $2 AND x.type = $3 AND x.occurred_at > $4::timestamptz))');
});

test('when topPercent is compiled, then the threshold is ranked within the workspace among buyers', () => {
  const q = sql({ field: 'totalSpent', op: 'topPercent', value: 10 });
  expect(q.sql).toContain('ORDER BY 1 DESC LIMIT (SELECT ceil(count(*) * $3::numeric / 100)::bigint FROM customer_stats r3 WHERE r3.workspace_id = $4');
  expect(q.bindings).toEqual([WS, WS, 10, WS]);
});

test('when an attribute is compared, then its key is a bound value, not an identifier', () => {
  const q = sql({ field: 'attributes.tier', op: 'eq', value: 'gold' });
  expect(q.sql).toContain('(c.attributes -> $2) = $3::jsonb');
  expect(q.bindings).toEqual([WS, 'tier', '"gold"']);
});

test('when a preset or static segment is compiled, then it expands to its rule or a membership lookup', () => {
  expect(sql({ preset: 'returning' }).sql).toContain('s.purchase_count >= $2::bigint');
  const id = '22222222-2222-2222-2222-222222222222';
  const q = sql({ segment: id });
  expect(q.sql).toContain('EXISTS (SELECT 1 FROM segment_static_members m WHERE m.segment_id = $2 AND m.customer_id = c.id)');
  expect(q.bindings).toEqual([WS, id]);
});

const count = (node: SegmentNode) => compileCount(k, node, { workspaceId: WS, now: NOW, segments: new Map() }).toSQL().toNative();

test('when a rule reads stats alone, then its count is one query over customer_stats with every value bound', () => {
  const q = count({ all: [{ purchased: { category: "x' OR 1=1--", withinDays: 365 } }, { field: 'totalSpent', op: 'gt', value: 1000 }] });
  expect(q.sql).toBe(
    'select count(*) as "n" from "customer_stats" as "s" where "s"."workspace_id" = $1 and ' +
      '(EXISTS (SELECT 1 FROM purchase_items x WHERE x.customer_id = s.customer_id AND (x.workspace_id = $2 AND x.category = $3 AND x.occurred_at > $4::timestamptz)) AND (s.total_spent > $5::numeric))',
  );
  expect(q.bindings).toEqual([WS, WS, "x' OR 1=1--", new Date(NOW.getTime() - 366 * 86400000), 1000]);
  expect(count({ preset: 'fading' }).sql).toMatch(/^select count\(\*\) as "n" from "customer_stats" as "s" where "s"."workspace_id" = \$1 and /);
  expect(count({ preset: 'vip' }).bindings).toEqual([WS, WS, 10, WS]);
});

test('when a rule reads age, country, consent or gender beside stats, then its count reads the copies on customer_stats (migration 0023)', () => {
  const q = count({ all: [
    { field: 'age', op: 'between', value: [30, 60] },
    { field: 'country', op: 'in', value: ['US', 'GB'] },
    { field: 'emailConsent', op: 'eq', value: 'subscribed' },
    { field: 'smsConsent', op: 'neq', value: 'subscribed' },
    { field: 'gender', op: 'eq', value: 'female' },
    { field: 'purchaseCount', op: 'gte', value: 3 },
  ] });
  expect(q.sql).toMatch(/^select count\(\*\) as "n" from "customer_stats" as "s" where "s"."workspace_id" = \$1 and /);
  expect(q.sql).toContain('s.birth_date <= $2::date AND s.birth_date > $3::date');
  expect(q.sql).toContain('(s.country = ANY($4::bpchar[])) AND (s.email_consent = $5::text) AND (NOT coalesce(s.sms_consent = $6::text, false)) AND (s.gender = $7::text)');
  expect(q.sql).not.toMatch(/\bc\./);
  // The member query still reads the customer's own columns.
  expect(sql({ field: 'country', op: 'eq', value: 'US' }).sql).toContain('(c.country = $2::bpchar)');
});

test.each([
  ['a profile field stats has no copy of', { all: [{ field: 'city', op: 'eq', value: 'Riga' }, { field: 'totalSpent', op: 'gt', value: 5 }] }],
  ['an attribute', { all: [{ field: 'attributes.tier', op: 'eq', value: 'gold' }, { field: 'totalSpent', op: 'gt', value: 5 }] }],
  ['a negation (true without a stats row)', { not: { field: 'totalSpent', op: 'gt', value: 5 } }],
  ['notExists', { field: 'topCategory', op: 'notExists' }],
  ['an any with a purchase rule', { any: [{ purchased: { category: 'x' } }, { field: 'totalSpent', op: 'gt', value: 5 }] }],
  ['a static list', { all: [{ segment: '22222222-2222-2222-2222-222222222222' }, { field: 'totalSpent', op: 'gt', value: 5 }] }],
  ['a stats field compared with a profile field', { field: 'daysSinceLastPurchase', op: 'gt', value: { field: 'createdDaysAgo' } }],
] as Array<[string, SegmentNode]>)('when a rule has %s, then its count runs over the member query (customers joined to stats)', (_, node) => {
  const q = count(node);
  expect(q.sql).toContain('select count(*) as "n" from (select "c"."id" as "customer_id" from "customers" as "c" left join "customer_stats" as "s"');
  expect(q.bindings[0]).toBe(WS);
});

test('when country is compared, then it is compared as char(2) (its statistics apply) and the values stay bound', () => {
  const q = sql({ all: [{ field: 'country', op: 'in', value: ['US', 'GB '] }, { field: 'country', op: 'eq', value: 'DE' }, { field: 'country', op: 'eq', value: 'F ' }] });
  expect(q.sql).toContain('(c.country = ANY($2::bpchar[])) AND (c.country = $3::bpchar) AND (FALSE)');
  // A value with a trailing space matches nothing compared as text, so it is left out as char(2).
  expect(q.bindings).toEqual([WS, ['US'], 'DE']);
});

describe('checkTree', () => {
  test.each([
    [{ field: 'email" OR 1=1--', op: 'eq', value: 'x' }, 'field'],
    [{ field: 'totalSpent', op: 'contains', value: 'x' }, 'op'],
    [{ field: 'totalSpent', op: 'gt', value: '5' }, 'value'],
    [{ field: 'totalSpent', op: 'between', value: [5, 1] }, 'value'],
    [{ field: 'country', op: 'in', value: ['US', 3] }, 'value.1'],
    [{ field: 'email', op: 'exists', value: 'x' }, 'value'],
    [{ all: [{ preset: 'vip' }], any: [] }, '(root)'],
    [{ all: [{ purchased: { category: 'x', colour: 'red' } }] }, 'all.0.purchased'],
    [{ field: 'daysSinceLastPurchase', op: 'gt', value: { field: 'email' } }, 'value.field'],
  ])('when the tree is %j, then the error names %s', (tree, path) => {
    const r = checkTree(tree);
    expect(r.node).toBeNull();
    expect(r.errors[0]!.path).toBe(path);
  });

  test('when a valid tree is checked, then it comes back unchanged and its segment references are collected', () => {
    const tree = { any: [{ preset: 'vip' }, { segment: '22222222-2222-2222-2222-222222222222' }] };
    const r = checkTree(tree, ['definition']);
    expect(r.errors).toEqual([]);
    expect(r.node).toEqual(tree);
    expect(r.segmentRefs).toEqual([{ id: '22222222-2222-2222-2222-222222222222', path: 'definition.any.1.segment' }]);
  });
});
