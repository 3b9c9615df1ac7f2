/**
 * The README's benchmark figures, made from bench/results.json so that they cannot drift from the
 * run they come from: a sentence naming the machine and its load, then a table with a line per
 * benchmark and unit (its p50 and p99 side by side, "4.17 / 12.2 ms"). scripts/bench-table.ts
 * writes it between the markers; test/readme.test.ts checks the README against the file.
 */
import { advantage, type BenchRow, cell, formatNumber, formatRatio, shorten } from './report.js';
import type { BenchResults } from './results.js';

export const SECTION_START = '<!-- bench-table: made from bench/results.json by scripts/bench-table.ts -->';
export const SECTION_END = '<!-- /bench-table -->';

export function benchSection(results: BenchResults): string {
  return `${machineSentence(results)}\n\n${table(results.benchmarks.flatMap((b) => b.rows))}`;
}

/** The README's text between the markers (markers excluded). */
export function sectionOf(readme: string): string {
  const { start, end } = bounds(readme);
  return readme.slice(start, end).trim();
}

/** The README with `section` between the markers instead of what was there. */
export function withSection(readme: string, section: string): string {
  const { start, end } = bounds(readme);
  return `${readme.slice(0, start)}\n${section}\n${readme.slice(end)}`;
}

function bounds(readme: string): { start: number; end: number } {
  const start = readme.indexOf(SECTION_START);
  const end = readme.indexOf(SECTION_END);
  if (start < 0 || end < start) throw new Error(`README.md has no ${SECTION_START} ... ${SECTION_END}`);
  return { start: start + SECTION_START.length, end };
}

function machineSentence(results: BenchResults): string {
  const { machine, loadAverage, containersRunning, benchmarks } = results;
  const minutes = Math.round(results.seconds / 6) / 10;
  const oneMinute = (load: number[]) => load[0] ?? Number.NaN;
  const peak = Math.max(
    ...benchmarks.flatMap((b) => [oneMinute(b.loadAverageAtStart), oneMinute(b.loadAverageAtEnd)]),
  );
  return wrap(
    `Figures of the run in \`bench/results.json\` (${machine.cpuModel}, ${machine.cores} cores, ` +
      `${machine.memoryGiB.toFixed(1)} GiB; ${machine.os}; Docker ${machine.docker.version}, ` +
      `cgroup v${machine.docker.cgroupVersion}; Node ${machine.node}; ${machine.date.slice(0, 10)}, ` +
      `${minutes} minutes). 1-minute load, the suite's and other users': ${oneMinute(loadAverage.atStart)} at ` +
      `start, ${oneMinute(loadAverage.atEnd)} at end, up to ${peak} between benchmarks; others' ` +
      `containers running: ${containersRunning.atStart} at start, ${containersRunning.atEnd} at end. ` +
      'Ratio above 1: ours wins.',
  );
}

/** Lines of at most `width` characters, as the rest of the README is written. */
function wrap(text: string, width = 100): string {
  const lines: string[] = [];
  for (const word of text.split(' ')) {
    const last = lines.at(-1);
    if (last !== undefined && last.length + 1 + word.length <= width)
      lines[lines.length - 1] = `${last} ${word}`;
    else lines.push(word);
  }
  return lines.join('\n');
}

/** Consecutive rows of one benchmark and one unit share a line; a failed one stands alone. */
function lines(rows: readonly BenchRow[]): BenchRow[][] {
  const grouped: BenchRow[][] = [];
  for (const row of rows) {
    const line = grouped.at(-1);
    const previous = line?.at(-1);
    const joins =
      previous !== undefined &&
      previous.benchmark === row.benchmark &&
      previous.unit === row.unit &&
      previous.error === undefined &&
      row.error === undefined;
    if (line && joins) line.push(row);
    else grouped.push([row]);
  }
  return grouped;
}

function table(rows: readonly BenchRow[]): string {
  const joined = (values: string[]) => values.join(' / ');
  const body = lines(rows).map((line, i, all) => {
    const [first] = line;
    if (first === undefined) return [];
    const { benchmark, unit, error } = first;
    const figures = (pick: (row: BenchRow) => number | null) =>
      line.every((row) => pick(row) === null)
        ? ''
        : `${joined(line.map((row) => formatNumber(pick(row))))} ${unit}`;
    const ratios = line.map(advantage);
    return [
      all[i - 1]?.[0]?.benchmark === benchmark ? '' : benchmark,
      error === undefined ? joined(line.map((row) => row.stat)) : `FAILED: ${shorten(error)}`,
      figures((row) => row.ours),
      figures((row) => row.baseline),
      ratios.every((ratio) => ratio === null) ? '' : joined(ratios.map(formatRatio)),
    ];
  });
  return [
    '| benchmark (ours vs baseline) | stat | ours | baseline | ratio |',
    '|---|---|---:|---:|---:|',
    ...body.map((cells) => `| ${cells.map(cell).join(' | ')} |`),
  ].join('\n');
}
