/**
 * Tool parameters as JSON Schema, and the one validator that reads them: a tool's schema is both
 * what the model is shown and what its arguments are checked against, so the two cannot drift.
 * Flat objects of strings, integers and booleans are all the tools need (the SDK has no zod).
 */
import { isRecord, ValidationError } from '../errors.js';

export type ParameterSchema =
  | { type: 'string'; description: string; minLength?: number }
  | { type: 'integer'; description: string; minimum?: number; maximum?: number }
  | { type: 'boolean'; description: string };

export type Properties = Record<string, ParameterSchema>;

/** The JSON Schema of a tool's arguments, as function-calling APIs take it. */
export interface ToolParameters<P extends Properties = Properties, R extends keyof P = keyof P> {
  type: 'object';
  properties: P;
  required: R[];
  additionalProperties: false;
}

type ValueOf<S extends ParameterSchema> = S extends { type: 'string' }
  ? string
  : S extends { type: 'integer' }
    ? number
    : boolean;

/** The arguments a schema describes: required ones present, the others optional. */
export type ArgsOf<P extends Properties, R extends keyof P> = { [K in R]: ValueOf<P[K]> } & {
  [K in Exclude<keyof P, R>]?: ValueOf<P[K]>;
};

export function objectSchema<P extends Properties, R extends keyof P & string>(
  properties: P,
  required: R[],
): ToolParameters<P, R> {
  return { type: 'object', properties, required, additionalProperties: false };
}

/**
 * Checks `args` (an object, or its JSON text as models send it) against the schema; throws
 * ValidationError naming the tool and the first wrong argument.
 */
export function validateArgs<P extends Properties, R extends keyof P & string>(
  tool: string,
  schema: ToolParameters<P, R>,
  args: unknown,
): ArgsOf<P, R> {
  const fail = (message: string, argument?: string): never => {
    throw new ValidationError({
      code: 'VALIDATION_ERROR',
      message: `${tool}: ${message}`,
      details: { tool, ...(argument === undefined ? {} : { argument }) },
    });
  };
  let value = args;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      fail('the arguments are not valid JSON');
    }
  }
  if (!isRecord(value)) return fail('the arguments must be a JSON object');
  for (const name of Object.keys(value)) {
    if (!Object.hasOwn(schema.properties, name)) fail(`unknown argument ${JSON.stringify(name)}`, name);
  }
  for (const name of schema.required) {
    if (value[name] === undefined) fail(`the argument ${JSON.stringify(name)} is required`, name);
  }
  for (const [name, property] of Object.entries(schema.properties)) {
    const given = value[name];
    if (given === undefined) continue;
    const problem = checkValue(property, given);
    if (problem) fail(`the argument ${JSON.stringify(name)} ${problem}`, name);
  }
  return value as ArgsOf<P, R>;
}

/** What is wrong with a value, or undefined when it fits. */
function checkValue(schema: ParameterSchema, value: unknown): string | undefined {
  switch (schema.type) {
    case 'string':
      if (typeof value !== 'string') return 'must be a string';
      if (value.length < (schema.minLength ?? 0)) return `must be at least ${schema.minLength} characters`;
      return undefined;
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) return 'must be an integer';
      if (schema.minimum !== undefined && value < schema.minimum) return `must be at least ${schema.minimum}`;
      if (schema.maximum !== undefined && value > schema.maximum) return `must be at most ${schema.maximum}`;
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
  }
}
