/**
 * Reads the server's settings: a dotenv file (the `--config FILE.env` given, else `.env` in the
 * working directory when there is one) under the process environment, which wins. Only the keys the
 * schema knows are taken, so an environment full of unrelated variables is fine. An empty value
 * (`PORT=`) counts as unset, so a copy of `.env.example` with blanks keeps the defaults.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import type { z } from 'zod';
import { messageOf } from '../errors.js';
import { type Config, configSchema } from './schema.js';

/** Every bad setting at once, one `NAME: reason` per line, readable at start. */
export class ConfigError extends Error {
  constructor(
    readonly problems: string[],
    origin: string,
  ) {
    super(`Invalid configuration (${origin}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface LoadConfigOptions {
  /** A dotenv file that must exist (`--config`); relative to `cwd`. */
  configFile?: string;
  /** Defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where `.env` and a relative `configFile` are looked up; defaults to process.cwd(). */
  cwd?: string;
}

/** Settings whose values never appear in error messages. */
const SECRET_KEYS = new Set([
  'BEARER_TOKEN',
  'SANDBOX_TOKEN_SECRET',
  'REDIS_PASSWORD',
  'OSS_ACCESS_KEY_ID',
  'OSS_ACCESS_KEY_SECRET',
]);

const KNOWN_KEYS: readonly string[] = Object.keys(configSchema.shape);

export interface LoadedConfig {
  config: Config;
  /** The settings given a value (by the environment or the file), as opposed to left at their default. */
  given: ReadonlySet<string>;
}

export function loadConfig(options: LoadConfigOptions = {}): Config {
  return loadSettings(options).config;
}

/** loadConfig, saying which settings were given. */
export function loadSettings(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const file = dotenvFile(options.configFile, cwd);
  const fromFile = file ? readDotenv(file) : {};
  const raw = { ...knownSettings(fromFile), ...knownSettings(options.env ?? process.env) };

  const result = configSchema.safeParse(raw);
  if (result.success) return { config: result.data, given: new Set(Object.keys(raw)) };
  const origin = file ? `environment over ${file}` : 'environment';
  throw new ConfigError(
    result.error.issues.map((issue) => describeIssue(issue, raw)),
    origin,
  );
}

function dotenvFile(configFile: string | undefined, cwd: string): string | undefined {
  if (configFile !== undefined) {
    const path = resolve(cwd, configFile);
    if (!existsSync(path)) throw new ConfigError([`--config: no such file ${path}`], 'command line');
    return path;
  }
  const implicit = resolve(cwd, '.env');
  return existsSync(implicit) ? implicit : undefined;
}

function readDotenv(path: string): Record<string, string> {
  try {
    return parseDotenv(readFileSync(path));
  } catch (error) {
    throw new ConfigError([`--config: cannot read ${path}: ${messageOf(error)}`], path);
  }
}

function knownSettings(source: Record<string, string | undefined>): Record<string, string> {
  const picked: Record<string, string> = {};
  for (const key of KNOWN_KEYS) {
    const value = source[key];
    if (value !== undefined && value.trim() !== '') picked[key] = value;
  }
  return picked;
}

function describeIssue(issue: z.core.$ZodIssue, raw: Record<string, string>): string {
  const key = typeof issue.path[0] === 'string' ? issue.path[0] : '(settings)';
  const value = raw[key];
  // zod's own messages ("expected one of ...") do not say what was given; ours already do.
  const shown = issue.code !== 'custom' && value !== undefined && !SECRET_KEYS.has(key);
  return `${key}: ${issue.message}${shown ? ` (got ${JSON.stringify(value)})` : ''}`;
}
