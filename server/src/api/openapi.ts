/**
 * The OpenAPI 3.1 document of the v1 API, generated from the route table and its zod schemas
 * (`z.toJSONSchema`, JSON Schema 2020-12 as OpenAPI 3.1 uses it). Request shapes are described as
 * callers write them (defaults optional), answers as the server sends them.
 */
import { ERROR_CODES, type ErrorCode, errorBodySchema, statusOf } from '@runtime-sandbox/contract';
import { z } from 'zod';
import { errorCodesOf } from './route-errors.js';
import { type BodySpec, ROUTE_TAGS, ROUTES, type RouteSpec } from './routes.js';

type JsonSchema = Record<string, unknown>;
type Io = 'input' | 'output';

const ERROR_REF = { $ref: '#/components/schemas/ErrorBody' };

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of ROUTES as readonly RouteSpec[]) {
    const path = route.path.replace(/:(\w+)/g, '{$1}');
    paths[path] ??= {};
    paths[path][route.method] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'runtime-sandbox',
      version: 'v1',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      description:
        'Warm pools of locked-down sandboxes for AI agents. Every error answer is an ErrorBody whose ' +
        `code is one of: ${Object.keys(ERROR_CODES).join(', ')}.`,
    },
    servers: [{ url: '/' }],
    tags: Object.entries(ROUTE_TAGS).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas: { ErrorBody: schemaOf(errorBodySchema, 'output') },
      securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
    },
    security: [{ bearerAuth: [] }],
  };
}

function operation(route: RouteSpec): Record<string, unknown> {
  const parameters = [...parametersOf(route.params, 'path'), ...parametersOf(route.query, 'query')];
  const responses: Record<string, unknown> = {};
  for (const [status, response] of Object.entries(route.responses)) {
    responses[status] = {
      description: response.description,
      ...(response.content ? { content: contentOf(response.content, 'output') } : {}),
    };
  }
  for (const [status, codes] of byStatus(errorCodesOf(route))) {
    responses[status] = {
      description: codes.map((code) => `\`${code}\`: ${ERROR_CODES[code].description}`).join('; '),
      content: { 'application/json': { schema: ERROR_REF } },
    };
  }
  return {
    operationId: route.operationId,
    summary: route.summary,
    tags: [route.tag],
    ...(route.auth ? {} : { security: [] }),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body
      ? { requestBody: { required: route.body.optional !== true, content: contentOf([route.body], 'input') } }
      : {}),
    responses,
  };
}

/** Error codes grouped by the status they answer with, statuses ascending. */
function byStatus(codes: readonly ErrorCode[]): Array<[number, ErrorCode[]]> {
  const groups = new Map<number, ErrorCode[]>();
  for (const code of codes) groups.set(statusOf(code), [...(groups.get(statusOf(code)) ?? []), code]);
  return [...groups].sort(([a], [b]) => a - b);
}

function contentOf(bodies: readonly BodySpec[], io: Io): Record<string, unknown> {
  const content: Record<string, unknown> = {};
  for (const body of bodies) {
    const schema = body.schema
      ? schemaOf(body.schema, io)
      : { type: 'string', contentMediaType: body.contentType };
    content[body.contentType] = {
      schema: body.description ? { ...schema, description: body.description } : schema,
    };
  }
  return content;
}

function parametersOf(schema: z.ZodObject | undefined, where: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  const json = schemaOf(schema, 'input');
  const properties = (json.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || required.has(name),
    schema: property,
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
  }));
}

function schemaOf(schema: z.ZodType, io: Io): JsonSchema {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}
