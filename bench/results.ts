/**
 * bench/results.json: what one run of the suite (bench/run-all.ts) measured, with the machine it
 * ran on and how loaded that machine was. The reference run's file is committed; the README's
 * figures are made from it (bench/readme-table.ts), so the schema is here to read it back.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { benchRowSchema } from './report.js';

export const RESULTS_FILE = fileURLToPath(new URL('./results.json', import.meta.url));

/** The 1, 5 and 15 minute load averages (os.loadavg()): others use the machine too. */
const loadAverage = z.array(z.number());

export const machineSchema = z.object({
  cpuModel: z.string(),
  cores: z.number(),
  memoryGiB: z.number(),
  kernel: z.string(),
  os: z.string(),
  docker: z.object({
    version: z.string(),
    apiVersion: z.string(),
    storageDriver: z.string(),
    cgroupVersion: z.string(),
  }),
  node: z.string(),
  date: z.string(),
});
export type Machine = z.infer<typeof machineSchema>;

export const benchmarkResultSchema = z.object({
  name: z.string(),
  status: z.enum(['ok', 'failed']),
  iterations: z.record(z.string(), z.unknown()),
  seconds: z.number(),
  /** Was the machine quiet while this benchmark ran? */
  loadAverageAtStart: loadAverage,
  loadAverageAtEnd: loadAverage,
  rows: z.array(benchRowSchema),
  error: z.string().optional(),
});
export type BenchmarkResult = z.infer<typeof benchmarkResultSchema>;

export const benchResultsSchema = z.object({
  machine: machineSchema,
  startedAt: z.string(),
  finishedAt: z.string(),
  seconds: z.number(),
  loadAverage: z.object({ atStart: loadAverage, atEnd: loadAverage }),
  /** Running containers that were not the suite's: someone else's load on the engine. */
  containersRunning: z.object({ atStart: z.number(), atEnd: z.number() }),
  iterations: z.record(z.string(), z.unknown()),
  ratioLegend: z.string(),
  benchmarks: z.array(benchmarkResultSchema),
});
export type BenchResults = z.infer<typeof benchResultsSchema>;

export function readResults(file = RESULTS_FILE): BenchResults {
  return benchResultsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

export function writeResults(results: BenchResults, file = RESULTS_FILE): void {
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
}
