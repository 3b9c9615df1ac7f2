/**
 * What every benchmark reports, and how: one row type for every figure (ours next to the baseline
 * measured in the same run), the percentile and summary helpers, and the table printer.
 */
import { pathToFileURL } from 'node:url';
import { z } from 'zod';

/** Whether a smaller or a larger figure is the better one. */
const better = z.enum(['lower', 'higher']);
export type Better = z.infer<typeof better>;

const unit = z.enum(['ms', 'MiB/s', 'execs/s', 'acquires/s', 'MiB']);
export type Unit = z.infer<typeof unit>;

/** A schema rather than only a type: bench/results.json is read back (scripts/bench-table.ts). */
export const benchRowSchema = z.object({
  /** What is measured: the operation, and ours against the baseline, e.g. "exec `true`: sandboxd vs Docker exec API". */
  benchmark: z.string(),
  /** The statistic: p50, p99, mean, median, rate, ... */
  stat: z.string(),
  unit,
  better,
  /** Our figure; null when there is none (a failed benchmark). */
  ours: z.number().nullable(),
  /** The baseline's figure from the same run; null when the row has no baseline. */
  baseline: z.number().nullable(),
  /** Samples behind `ours` (and behind `baseline`, which takes as many). */
  n: z.number(),
  /** Set when the benchmark failed: why. */
  error: z.string().optional(),
});
export type BenchRow = z.infer<typeof benchRowSchema>;

export interface LatencySummary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

/** Nearest-rank percentile of ascending `sorted` values; NaN for none. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Rounds to three decimals, so figures stay readable in JSON. */
export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}

export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50Ms: round3(percentile(sorted, 50)),
    p99Ms: round3(percentile(sorted, 99)),
    meanMs: round3(sorted.reduce((sum, ms) => sum + ms, 0) / sorted.length),
  };
}

/** How long `work` takes, milliseconds. */
export async function elapsedMs(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** p50 and p99 rows of ours against a baseline, both latencies in milliseconds. */
export function latencyRows(benchmark: string, ours: LatencySummary, baseline?: LatencySummary): BenchRow[] {
  return (['p50', 'p99'] as const).map((stat) => ({
    benchmark,
    stat,
    unit: 'ms',
    better: 'lower',
    ours: stat === 'p50' ? ours.p50Ms : ours.p99Ms,
    baseline: baseline === undefined ? null : stat === 'p50' ? baseline.p50Ms : baseline.p99Ms,
    n: ours.n,
  }));
}

/** The row that stands for a benchmark that did not finish. */
export function failedRow(benchmark: string, error: unknown): BenchRow {
  const message = error instanceof Error ? error.message : String(error);
  return {
    benchmark,
    stat: 'FAILED',
    unit: 'ms',
    better: 'lower',
    ours: null,
    baseline: null,
    n: 0,
    error: message,
  };
}

/** How many times better ours is than the baseline (above 1: ours wins); null without both figures. */
export function advantage(row: BenchRow): number | null {
  if (row.ours === null || row.baseline === null || row.ours === 0 || row.baseline === 0) return null;
  const ratio = row.better === 'lower' ? row.baseline / row.ours : row.ours / row.baseline;
  return Math.round(ratio * 100) / 100;
}

/** A figure with three significant digits or so (no unit); '-' for none. */
export function formatNumber(value: number | null): string {
  if (value === null) return '-';
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return value.toFixed(digits);
}

function formatValue(value: number | null, unit: Unit): string {
  return value === null ? '-' : `${formatNumber(value)} ${unit}`;
}

export function formatRatio(ratio: number | null): string {
  if (ratio === null) return '-';
  return `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}x`;
}

/** The first line of an error, cut to fit a table; results.json keeps the whole of it. */
export function shorten(message: string, max = 100): string {
  const line = message.split('\n')[0] ?? '';
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}

/** Escapes what would break a Markdown table cell. */
export function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

/**
 * A Markdown table: benchmark | stat | ours | baseline | ratio | n. A benchmark's name is shown on
 * its first row only; a failed benchmark shows its error in the stat column.
 */
export function formatTable(rows: readonly BenchRow[]): string {
  const header = ['benchmark (ours vs baseline)', 'stat', 'ours', 'baseline', 'ratio', 'n'];
  const body = rows.map((row, i) => [
    i > 0 && rows[i - 1]?.benchmark === row.benchmark ? '' : row.benchmark,
    row.error === undefined ? row.stat : `FAILED: ${shorten(row.error)}`,
    formatValue(row.ours, row.unit),
    formatValue(row.baseline, row.unit),
    formatRatio(advantage(row)),
    row.n > 0 ? String(row.n) : '-',
  ]);
  const table = [header, ...body].map((cells) => cells.map(cell));
  const widths = header.map((_, column) => Math.max(...table.map((cells) => cells[column]?.length ?? 0)));
  const numeric = new Set([2, 3, 4, 5]);
  const line = (cells: string[]) =>
    `| ${cells
      .map((c, column) =>
        numeric.has(column) ? c.padStart(widths[column] ?? 0) : c.padEnd(widths[column] ?? 0),
      )
      .join(' | ')} |`;
  const rule = `|${widths.map((w, column) => (numeric.has(column) ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  const [head, ...rest] = table;
  return [line(head ?? []), rule, ...rest.map(line)].join('\n');
}

export const RATIO_LEGEND =
  'ratio: how many times better ours is than the baseline (baseline / ours for times and memory, ours / baseline for rates); above 1 means ours wins.';

/** True when this module is the script node was started with (`npx tsx bench/<name>.ts`). */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && moduleUrl === pathToFileURL(script).href;
}

/** The positive integer after `--<name>` on the command line, if there is one. */
export function numberFlag(name: string): number | undefined {
  const index = process.argv.indexOf(`--${name}`);
  const value = index >= 0 ? Number(process.argv[index + 1]) : Number.NaN;
  return Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Runs a benchmark alone: prints its table, exits non-zero when it threw. */
export function runAlone(run: () => Promise<BenchRow[]>): void {
  run().then(
    (rows) => {
      console.log(formatTable(rows));
      console.log(`\n${RATIO_LEGEND}`);
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
