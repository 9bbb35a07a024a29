import knex from 'knex';
import { decideWinner } from '../src/results/ab';
import { liftOf } from '../src/results/lift';
import { ageAt, ageBandOf, snapshotOf, snapshotSql } from '../src/results/snapshot';

describe('age bands', () => {
  test('when ages sit on band edges, then each falls in the band API.md names', () => {
    expect([17, 18, 24, 25, 34, 35, 44, 45, 54, 55, 64, 65, 90].map(ageBandOf)).toEqual(['under 18', '18-24', '18-24', '25-34', '25-34', '35-44', '35-44', '45-54', '45-54', '55-64', '55-64', '65+', '65+']);
    expect(ageBandOf(null)).toBeNull();
  });

  test('when the birthday is tomorrow, then the customer is still the younger age', () => {
    const at = new Date('2026-06-14T12:00:00Z');
    expect(ageAt('2001-06-15', at)).toBe(24);
    expect(ageAt('2001-06-14', at)).toBe(25);
    expect(snapshotOf({ birth_date: '2001-06-15', city: 'Lyon', gender: 'f' }, ['s'], at)).toEqual({ segmentIds: ['s'], ageBand: '18-24', city: 'Lyon', gender: 'f', region: null, country: null });
  });

  test('when the SQL snapshot is built, then values are bound and a bad alias is refused', () => {
    const k = knex({ client: 'pg' });
    const q = snapshotSql(k, 'c', ['x"; DROP TABLE y; --'], new Date(0)).toSQL();
    expect(q.sql).not.toContain('DROP');
    expect(q.bindings).toEqual(['["x\\"; DROP TABLE y; --"]', new Date(0)]);
    expect(() => snapshotSql(k, 'c; DROP', [], new Date())).toThrow();
  });
});

describe('A/B winner', () => {
  test('when deciding on clicks, then the highest click rate wins, not the most clicks', () => {
    const d = decideWinner([{ variant: 'A', sent: 1000, clicks: 50, conversions: 9 }, { variant: 'B', sent: 400, clicks: 30, conversions: 2 }], 'clicks');
    expect(d.winner).toBe('B'); // 7.5% beats 5%
    expect(d.results.map((r) => r.rate)).toEqual([0.05, 0.075]);
    expect(decideWinner(d.results, 'conversions').winner).toBe('A'); // 0.9% beats 0.5%
  });

  test('when rates tie, then the better-measured variant wins; a variant without sends never wins', () => {
    expect(decideWinner([{ variant: 'A', sent: 10, clicks: 1, conversions: 0 }, { variant: 'B', sent: 20, clicks: 2, conversions: 0 }], 'clicks').winner).toBe('B');
    expect(decideWinner([{ variant: 'A', sent: 0, clicks: 0, conversions: 0 }, { variant: 'B', sent: 5, clicks: 0, conversions: 0 }], 'clicks').winner).toBe('B');
  });
});

describe('lift', () => {
  test('when the holdout converts nothing, then relative lift is null but the interval is still given', () => {
    // p1 = 0.5 of 4, p2 = 0 of 4: se = sqrt(.25/4) = 0.25, interval 0.5 +- 0.49
    const l = liftOf(2, 4, 0, 4);
    expect(l.relative).toBeNull();
    expect(l.ci95![0]).toBeCloseTo(0.5 - 1.959963984540054 * 0.25, 12);
    expect(l.ci95![1]).toBeCloseTo(0.989991, 6);
  });
});
