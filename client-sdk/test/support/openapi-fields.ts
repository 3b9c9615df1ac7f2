/**
 * Reads the fields of a schema out of an OpenAPI document (3.0 or 3.1, `$ref`s resolved) and
 * compares them with one entry of the SDK's `SCHEMA_FIELDS`, listing every difference in words.
 */
import type { FieldSpec, JsonType } from '../../src/index.js';

type JsonSchema = Record<string, unknown>;
type Kind = JsonType | 'null';

export interface FieldShape {
  kinds: Set<Kind>;
  optional: boolean;
}

export interface Locator {
  /** OpenAPI path with its parameters in braces, e.g. `/v1/sandboxes/{id}`; parameter names do not matter. */
  path: string;
  method: 'get' | 'post' | 'put' | 'delete';
  /** The JSON request body, or the JSON body of the 2xx answer. */
  part: 'request' | 'response';
  /**
   * Property names, `[]` for array items and `|N` for the Nth member of a union (anyOf or oneOf),
   * leading from the body schema to the one compared.
   */
  within?: string[];
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class OpenApiDocument {
  constructor(private readonly document: JsonSchema) {}

  /** The schema a locator points at, `$ref`s resolved. */
  schemaAt(locator: Locator): JsonSchema {
    const operation = this.operation(locator);
    let body: unknown;
    if (locator.part === 'request') {
      body = this.deref(operation.requestBody);
    } else {
      const responses = this.deref(operation.responses);
      const ok = Object.entries(responses).find(([status]) => /^2\d\d$/.test(status));
      if (!ok) throw new Error(`${locator.method} ${locator.path} documents no 2xx answer`);
      body = this.deref(ok[1]);
    }
    const content = isSchema(body) ? this.deref(body.content) : {};
    const media = content['application/json'];
    if (!isSchema(media))
      throw new Error(`${locator.method} ${locator.path} has no JSON ${locator.part} body`);
    let schema = this.deref(media.schema);
    for (const step of locator.within ?? []) {
      if (step === '[]') schema = this.deref(schema.items);
      else if (/^\|\d+$/.test(step)) schema = this.member(schema, Number(step.slice(1)));
      else schema = this.deref(this.properties(schema)[step]);
    }
    return schema;
  }

  /** Every property of an object schema (allOf parts merged) with its kinds and optionality. */
  fields(schema: JsonSchema): Map<string, FieldShape> {
    const fields = new Map<string, FieldShape>();
    const required = new Set(this.required(schema));
    for (const [name, property] of Object.entries(this.properties(schema))) {
      fields.set(name, { kinds: this.kinds(this.deref(property)), optional: !required.has(name) });
    }
    return fields;
  }

  private operation(locator: Locator): JsonSchema {
    const paths = this.deref(this.document.paths);
    const wanted = normalizePath(locator.path);
    const entry = Object.entries(paths).find(([path]) => normalizePath(path) === wanted);
    if (!entry) throw new Error(`the OpenAPI document has no path ${locator.path}`);
    const operation = this.deref(entry[1])[locator.method];
    if (!isSchema(operation))
      throw new Error(`the OpenAPI document has no ${locator.method} ${locator.path}`);
    return operation;
  }

  private member(schema: JsonSchema, index: number): JsonSchema {
    const members = schema.anyOf ?? schema.oneOf;
    if (!Array.isArray(members) || index >= members.length) {
      throw new Error(`the schema has no union member ${index}`);
    }
    return this.deref(members[index]);
  }

  private properties(schema: JsonSchema): Record<string, unknown> {
    const own = isSchema(schema.properties) ? schema.properties : {};
    const parts = Array.isArray(schema.allOf)
      ? schema.allOf.map((part) => this.properties(this.deref(part)))
      : [];
    return Object.assign({}, ...parts, own);
  }

  private required(schema: JsonSchema): string[] {
    const own = Array.isArray(schema.required) ? schema.required.map(String) : [];
    const parts = Array.isArray(schema.allOf)
      ? schema.allOf.flatMap((part) => this.required(this.deref(part)))
      : [];
    return [...own, ...parts];
  }

  private kinds(schema: JsonSchema): Set<Kind> {
    const kinds = new Set<Kind>();
    const { type } = schema;
    if (typeof type === 'string') kinds.add(type as Kind);
    if (Array.isArray(type)) for (const t of type) kinds.add(String(t) as Kind);
    if (schema.nullable === true) kinds.add('null');
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      const members = schema[key];
      if (Array.isArray(members))
        for (const m of members) for (const k of this.kinds(this.deref(m))) kinds.add(k);
    }
    const values = Array.isArray(schema.enum) ? schema.enum : 'const' in schema ? [schema.const] : [];
    for (const value of values) kinds.add(value === null ? 'null' : (typeof value as Kind));
    return kinds;
  }

  private deref(value: unknown): JsonSchema {
    let current = value;
    for (let hops = 0; isSchema(current) && typeof current.$ref === 'string'; hops++) {
      if (hops > 32) throw new Error('a $ref cycle');
      const target: unknown = current.$ref
        .replace(/^#\//, '')
        .split('/')
        .reduce<unknown>(
          (node, key) => (isSchema(node) ? node[key.replace(/~1/g, '/').replace(/~0/g, '~')] : undefined),
          this.document,
        );
      current = target;
    }
    return isSchema(current) ? current : {};
  }
}

function normalizePath(path: string): string {
  return path.replace(/\{[^}]*\}/g, '{}').replace(/:[A-Za-z_]\w*/g, '{}');
}

export function parseFieldSpec(spec: FieldSpec): FieldShape {
  const optional = spec.endsWith('?');
  const kinds = new Set((optional ? spec.slice(0, -1) : spec).split('|') as Kind[]);
  return { kinds, optional };
}

/** Whether a value the server sends (or accepts) as `server` fits what the SDK declares as `sdk`. */
function fits(server: Kind, sdk: Set<Kind>): boolean {
  return sdk.has(server) || (server === 'integer' && sdk.has('number'));
}

/**
 * Differences between an SDK field list and a server schema. For answers every field the SDK
 * requires must be required by the server; for requests every field the server requires must be
 * one the SDK requires too. Either way, both sides must list the same fields with fitting types.
 */
export function compareFields(
  sdkFields: Record<string, FieldSpec>,
  server: Map<string, FieldShape>,
  part: 'request' | 'response',
): string[] {
  const problems: string[] = [];
  for (const [name, spec] of Object.entries(sdkFields)) {
    const sdk = parseFieldSpec(spec);
    const theirs = server.get(name);
    if (!theirs) {
      problems.push(`${name}: in the SDK, not in the server's schema`);
      continue;
    }
    // Requests: what the SDK sends must be accepted. Answers: what the server sends must be understood.
    const [from, to] = part === 'request' ? [sdk.kinds, theirs.kinds] : [theirs.kinds, sdk.kinds];
    const misfits = [...from].filter((kind) => !fits(kind, to));
    if (from.size === 0 || misfits.length > 0) {
      problems.push(`${name}: SDK says ${spec}, server says ${[...theirs.kinds].join('|') || 'anything'}`);
    }
    if (part === 'response' && !sdk.optional && theirs.optional) {
      problems.push(`${name}: the SDK relies on it, the server may leave it out`);
    }
    if (part === 'request' && sdk.optional && !theirs.optional) {
      problems.push(`${name}: the server requires it, the SDK may leave it out`);
    }
  }
  for (const name of server.keys()) {
    if (!(name in sdkFields)) problems.push(`${name}: in the server's schema, not in the SDK`);
  }
  return problems;
}
