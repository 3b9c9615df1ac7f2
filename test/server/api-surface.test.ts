/**
 * What operators and client generators read: /metrics with the pool, status, acquire and exec
 * series; /v1/openapi.json, valid OpenAPI 3.1 naming every route the server answers; and
 * /v1/sandbox-types with images and pool status.
 */
import { describe, expect, it } from 'vitest';
import { BASE_IMAGE } from '../../support/images.js';
import { withServer } from '../support/fixture.js';

const EXPECTED_ROUTES = [
  'get /healthz',
  'get /readyz',
  'get /metrics',
  'get /v1/openapi.json',
  'get /v1/sandbox-types',
  'post /v1/sandboxes',
  'get /v1/sandboxes',
  'get /v1/sandboxes/{id}',
  'delete /v1/sandboxes/{id}',
  'post /v1/sandboxes/{id}/keepalive',
  'post /v1/sandboxes/{id}/exec',
  'get /v1/sandboxes/{id}/files',
  'put /v1/sandboxes/{id}/files',
  'delete /v1/sandboxes/{id}/files',
  'get /v1/sandboxes/{id}/files/list',
  'get /v1/sandboxes/{id}/files/stat',
  'post /v1/sandboxes/{id}/files/move',
  'post /v1/sandboxes/{id}/files/mkdir',
  'get /v1/sandboxes/{id}/archive',
  'put /v1/sandboxes/{id}/archive',
  'get /v1/sandboxes/{id}/tools',
  'post /v1/sandboxes/{id}/tools/{name}',
  'post /v1/sandboxes/{id}/python',
  'post /v1/sandboxes/{id}/snapshots',
  'get /v1/snapshots',
  'get /v1/snapshots/{id}',
  'delete /v1/snapshots/{id}',
  'get /v1/pools',
  'put /v1/pools/{type}',
];

interface OpenApiOperation {
  operationId: string;
  requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }>;
}

describe('metrics, OpenAPI and types', () => {
  const server = withServer('h5-test-api-surface', {
    env: { POOL_SIZE: '1' },
    warm: 1,
  });

  it('exposes pool gauges, sandbox counts, acquire and exec histograms and error counts', async () => {
    const acquired = await server.call<{ id: string }>('POST', '/v1/sandboxes', {});
    await server.call('POST', `/v1/sandboxes/${acquired.body.id}/exec`, { command: 'true' });
    await server.call('GET', '/v1/sandboxes/0000000000000000');

    const response = await server.fetch('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toMatch(/^runtime_sandbox_pool_target\{type="base"\} 1$/m);
    expect(text).toMatch(/^runtime_sandbox_pool_warm\{type="base"\} \d+$/m);
    expect(text).toMatch(/^runtime_sandbox_sandboxes\{status="claimed"\} 1$/m);
    expect(text).toMatch(
      /^runtime_sandbox_acquire_duration_seconds_count\{type="base",fromPool="true"\} 1$/m,
    );
    expect(text).toMatch(/^runtime_sandbox_exec_total\{mode="json"\} 1$/m);
    expect(text).toMatch(/^runtime_sandbox_exec_duration_seconds_count\{mode="json"\} 1$/m);
    expect(text).toMatch(/^runtime_sandbox_errors_total\{code="SANDBOX_NOT_FOUND"\} 1$/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
  });

  it('serves an OpenAPI 3.1 document naming every route with its schemas', async () => {
    const response = await server.fetch('/v1/openapi.json');
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, OpenApiOperation>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(document.openapi).toBe('3.1.0');
    const routes = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    expect(routes.sort()).toEqual([...EXPECTED_ROUTES].sort());
    expect(document.components.schemas.ErrorBody).toBeDefined();

    const acquire = document.paths['/v1/sandboxes']?.post;
    const acquireBody = acquire?.requestBody?.content['application/json']?.schema as {
      properties: Record<string, unknown>;
    };
    expect(Object.keys(acquireBody.properties).sort()).toEqual(
      [
        'allow',
        'env',
        'idleTimeoutSeconds',
        'metadata',
        'network',
        'restore',
        'sessionId',
        'ttlSeconds',
        'type',
      ].sort(),
    );
    const info = acquire?.responses['201']?.content?.['application/json']?.schema as { properties: object };
    expect(Object.keys(info.properties)).toEqual(
      expect.arrayContaining(['id', 'type', 'status', 'sessionId', 'createdAt', 'expiresAt', 'fromPool']),
    );
    const exec = document.paths['/v1/sandboxes/{id}/exec']?.post;
    expect(Object.keys(exec?.responses['200']?.content ?? {}).sort()).toEqual([
      'application/json',
      'application/x-ndjson',
    ]);
    // Every operation declares its error answers, each with the shared error body.
    for (const methods of Object.values(document.paths)) {
      for (const operation of Object.values(methods)) {
        const errors = Object.entries(operation.responses).filter(([status]) => Number(status) >= 400);
        expect(errors.map(([status]) => status)).toEqual(expect.arrayContaining(['500']));
        for (const [, response] of errors) {
          expect(response.content?.['application/json']?.schema).toEqual({
            $ref: '#/components/schemas/ErrorBody',
          });
        }
      }
    }
    expect(Object.keys(exec?.responses ?? {})).toEqual(expect.arrayContaining(['400', '401', '404', '502']));
  });

  it('answers every documented route (none is ROUTE_NOT_FOUND)', async () => {
    for (const route of EXPECTED_ROUTES) {
      const [method = 'get', path = '/'] = route.split(' ');
      const concrete = path.replace('{id}', '0000000000000000').replace('{type}', 'base');
      const response = await server.fetch(concrete, { method: method.toUpperCase() });
      const code = response.ok
        ? undefined
        : ((await response.json()) as { error: { code: string } }).error.code;
      expect({ route, code }).not.toEqual({ route, code: 'ROUTE_NOT_FOUND' });
    }
  });

  it('lists the sandbox types with their images and pools', async () => {
    const { status, body } = await server.call<{
      types: Array<{ name: string; image: string; source: string; pool: { target: number } }>;
    }>('GET', '/v1/sandbox-types');
    expect(status).toBe(200);
    expect(body.types.find((t) => t.name === 'base')).toMatchObject({
      image: BASE_IMAGE,
      source: 'built-in',
      pool: { target: 1 },
    });
  });
});
