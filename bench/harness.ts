import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { ensureDatabase } from '../src/db';

export type Scale = 'small' | 'full';

export interface Metric {
  name: string;
  value: number;
  unit: string;
  /** What the figure is compared with, measured in the same run (e.g. a bare COPY). */
  baseline?: { name: string; value: number };
  /** The target of the issue, as text (e.g. ">= 10000", "< 1000 ms"), and whether it was met. */
  target?: { text: string; met: boolean };
}

export interface BenchContext {
  scale: Scale;
  log(msg: string): void;
}

export interface Bench {
  description: string;
  run(ctx: BenchContext): Promise<Metric[]>;
}

export const ratio = (m: Metric): number | null => (m.baseline && m.baseline.value !== 0 ? m.value / m.baseline.value : null);

/** A percentile of a sample (nearest-rank). */
export function percentile(sample: number[], p: number): number {
  if (!sample.length) return NaN;
  const sorted = [...sample].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function printTable(name: string, scale: Scale, metrics: Metric[]): string {
  const rows = metrics.map((m) => [
    m.name,
    `${fmt(m.value)} ${m.unit}`,
    m.baseline ? `${fmt(m.baseline.value)} ${m.unit} (${m.baseline.name})` : '',
    ratio(m) === null ? '' : ratio(m)!.toFixed(3),
    m.target ? `${m.target.text} ${m.target.met ? 'met' : 'NOT MET'}` : '',
  ]);
  const head = ['metric', 'value', 'baseline', 'ratio', 'target'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [`bench ${name} (scale ${scale})`, line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...rows.map(line)].join('\n');
}

const fmt = (n: number) => (Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3));

export function writeResults(name: string, scale: Scale, metrics: Metric[]): string {
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { name, scale, at: new Date().toISOString(), metrics: metrics.map((m) => ({ ...m, ratio: ratio(m) })) },
      null,
      2,
    ),
  );
  return file;
}

/**
 * A bench's own database, dropped and created again so an interrupted run leaves nothing behind.
 * Only hark_bench_* databases may be dropped: a mistyped URL must not take a real one with it.
 */
export async function recreateBenchDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  if (!/^hark_bench_[a-z0-9_]+$/.test(name)) throw new Error(`refusing to recreate ${name}: not a hark_bench_* database`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const c = new pg.Client({ connectionString: admin.toString() });
  await c.connect();
  try {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await c.end();
  }
  await ensureDatabase(url);
}
