/**
 * The SDK's hand-written types against the real server's `/v1/openapi.json`: every shape in
 * `SCHEMA_FIELDS` must list the same fields as the server's schema at the route that uses it, with
 * fitting types and optionality. A field added, renamed or retyped on either side fails here.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { withServer } from '../../test/support/fixture.js';
import { SCHEMA_FIELDS, type SchemaName } from '../src/index.js';
import { compareFields, type Locator, OpenApiDocument } from './support/openapi-fields.js';

/** Where each SDK shape lives in the API. */
const LOCATIONS: Record<SchemaName, Locator> = {
  SandboxInfo: { path: '/v1/sandboxes/{id}', method: 'get', part: 'response' },
  CreateSandboxOptions: { path: '/v1/sandboxes', method: 'post', part: 'request' },
  RestoreFromSnapshot: { path: '/v1/sandboxes', method: 'post', part: 'request', within: ['restore', '|0'] },
  RestoreFromKey: { path: '/v1/sandboxes', method: 'post', part: 'request', within: ['restore', '|1'] },
  SnapshotInfo: { path: '/v1/snapshots/{id}', method: 'get', part: 'response' },
  CreateSnapshotOptions: { path: '/v1/sandboxes/{id}/snapshots', method: 'post', part: 'request' },
  KeepAliveOptions: { path: '/v1/sandboxes/{id}/keepalive', method: 'post', part: 'request' },
  PoolInfo: { path: '/v1/pools', method: 'get', part: 'response', within: ['pools', '[]'] },
  PoolResizeRequest: { path: '/v1/pools/{type}', method: 'put', part: 'request' },
  SandboxTypeInfo: { path: '/v1/sandbox-types', method: 'get', part: 'response', within: ['types', '[]'] },
  SandboxResources: {
    path: '/v1/sandbox-types',
    method: 'get',
    part: 'response',
    within: ['types', '[]', 'resources'],
  },
  SandboxStorage: {
    path: '/v1/sandbox-types',
    method: 'get',
    part: 'response',
    within: ['types', '[]', 'storage'],
  },
  ExecRequest: { path: '/v1/sandboxes/{id}/exec', method: 'post', part: 'request' },
  ExecResult: { path: '/v1/sandboxes/{id}/exec', method: 'post', part: 'response' },
  FileEntry: { path: '/v1/sandboxes/{id}/files/stat', method: 'get', part: 'response' },
  ArchiveUploadResult: { path: '/v1/sandboxes/{id}/archive', method: 'put', part: 'response' },
  MoveRequest: { path: '/v1/sandboxes/{id}/files/move', method: 'post', part: 'request' },
  MkdirRequest: { path: '/v1/sandboxes/{id}/files/mkdir', method: 'post', part: 'request' },
};

/** Shapes that appear in more places: each must match everywhere. */
const ALSO_AT: Array<[SchemaName, Locator]> = [
  ['SandboxInfo', { path: '/v1/sandboxes', method: 'post', part: 'response' }],
  ['SandboxInfo', { path: '/v1/sandboxes', method: 'get', part: 'response', within: ['sandboxes', '[]'] }],
  ['SandboxInfo', { path: '/v1/sandboxes/{id}/keepalive', method: 'post', part: 'response' }],
  ['PoolInfo', { path: '/v1/pools/{type}', method: 'put', part: 'response' }],
  [
    'PoolInfo',
    { path: '/v1/sandbox-types', method: 'get', part: 'response', within: ['types', '[]', 'pool'] },
  ],
  ['FileEntry', { path: '/v1/sandboxes/{id}/files', method: 'put', part: 'response' }],
  [
    'FileEntry',
    { path: '/v1/sandboxes/{id}/files/list', method: 'get', part: 'response', within: ['entries', '[]'] },
  ],
  ['FileEntry', { path: '/v1/sandboxes/{id}/files/move', method: 'post', part: 'response' }],
  ['FileEntry', { path: '/v1/sandboxes/{id}/files/mkdir', method: 'post', part: 'response' }],
  ['SnapshotInfo', { path: '/v1/sandboxes/{id}/snapshots', method: 'post', part: 'response' }],
  ['SnapshotInfo', { path: '/v1/snapshots', method: 'get', part: 'response', within: ['snapshots', '[]'] }],
  // DELETE /v1/sandboxes/{id}?snapshot=true answers the snapshot it took.
  ['SnapshotInfo', { path: '/v1/sandboxes/{id}', method: 'delete', part: 'response' }],
];

// No pool and no image: this file needs the API description only, not sandboxes.
const server = withServer('sdk-openapi-test', { images: [], env: { POOL_SIZE: '0' } });
let document: OpenApiDocument;

beforeAll(async () => {
  const response = await server.fetch('/v1/openapi.json');
  expect(response.status).toBe(200);
  document = new OpenApiDocument((await response.json()) as Record<string, unknown>);
});

describe('SDK types against the server OpenAPI document', () => {
  const cases = [
    ...Object.entries(LOCATIONS).map(([name, locator]) => [name as SchemaName, locator] as const),
    ...ALSO_AT,
  ];
  it.each(cases)('%s at %o', (name, locator) => {
    const server = document.fields(document.schemaAt(locator));
    expect(compareFields(SCHEMA_FIELDS[name], server, locator.part)).toEqual([]);
  });

  it('notices a drifted field list', () => {
    const drifted = {
      ...SCHEMA_FIELDS.SandboxInfo,
      renamedField: 'string' as const,
      fromPool: 'string' as const,
    };
    const server = document.fields(document.schemaAt(LOCATIONS.SandboxInfo));
    expect(compareFields(drifted, server, 'response')).toEqual([
      expect.stringContaining('fromPool'),
      expect.stringContaining('renamedField'),
    ]);
  });
});
