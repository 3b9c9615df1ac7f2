/**
 * The v1 route table: method, path, what each route takes and answers. The HTTP app registers a
 * handler for every operation here (the compiler checks none is missing) and the OpenAPI document
 * is generated from it, so the two cannot drift apart.
 */
import {
  acquireRequestSchema,
  archiveExtractSchema,
  archiveQuerySchema,
  deleteQuerySchema,
  execEventSchema,
  execRequestSchema,
  execResultSchema,
  fileEntrySchema,
  fileListSchema,
  keepaliveRequestSchema,
  listQuerySchema,
  mkdirRequestSchema,
  moveRequestSchema,
  NDJSON,
  pathQuerySchema,
  poolListSchema,
  poolResizeRequestSchema,
  poolStatusSchema,
  sandboxInfoSchema,
  sandboxListQuerySchema,
  sandboxListSchema,
  sandboxTypeListSchema,
  snapshotInfoSchema,
  snapshotListQuerySchema,
  snapshotListSchema,
  snapshotRequestSchema,
  writeQuerySchema,
} from '@runtime-sandbox/contract';
import type { z } from 'zod';
import {
  healthSchema,
  poolTypeParamsSchema,
  readySchema,
  releaseQuerySchema,
  sandboxIdParamsSchema,
  snapshotIdParamsSchema,
} from './schemas.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** The OpenAPI tags, in the order the document lists them. */
export const ROUTE_TAGS = ['system', 'sandboxes', 'exec', 'files', 'archive', 'snapshots', 'pools'] as const;

export interface BodySpec {
  contentType: string;
  /** Absent for raw bytes. */
  schema?: z.ZodType;
  description?: string;
  /** The body may be left out (an empty body counts as `{}`). */
  optional?: boolean;
}

export interface RouteSpec {
  operationId: string;
  method: HttpMethod;
  /** Hono syntax (`:id`); the OpenAPI builder writes `{id}`. */
  path: string;
  summary: string;
  tag: (typeof ROUTE_TAGS)[number];
  /** false: answers without a bearer token even when BEARER_TOKEN is set. */
  auth: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: BodySpec;
  /** Success answers; every route also answers errors as ErrorBody. */
  responses: Record<number, { description: string; content?: BodySpec[] }>;
}

const json = (schema: z.ZodType): BodySpec[] => [{ contentType: 'application/json', schema }];
const octets: BodySpec = { contentType: 'application/octet-stream', description: 'Raw bytes' };
const tarBody: BodySpec = { contentType: 'application/x-tar', description: 'A tar stream' };
const gzipBody: BodySpec = {
  contentType: 'application/gzip',
  description: 'A gzipped tar stream (gzip=true)',
};
const sandboxParams = sandboxIdParamsSchema;
const sandboxPath = '/v1/sandboxes/:id';

export const ROUTES = [
  {
    operationId: 'health',
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: the process answers',
    tag: 'system',
    auth: false,
    responses: { 200: { description: 'Alive', content: json(healthSchema) } },
  },
  {
    operationId: 'ready',
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: the state store and the deployer answer, and the server is not shutting down',
    tag: 'system',
    auth: false,
    responses: { 200: { description: 'Ready', content: json(readySchema) } },
  },
  {
    operationId: 'metrics',
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'Prometheus text format', content: [{ contentType: 'text/plain' }] } },
  },
  {
    operationId: 'openapi',
    method: 'get',
    path: '/v1/openapi.json',
    summary: 'This document',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'OpenAPI 3.1', content: [{ contentType: 'application/json' }] } },
  },
  {
    operationId: 'listSandboxTypes',
    method: 'get',
    path: '/v1/sandbox-types',
    summary: 'Registered sandbox types, their images and pool status',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'Types', content: json(sandboxTypeListSchema) } },
  },
  {
    operationId: 'acquireSandbox',
    method: 'post',
    path: '/v1/sandboxes',
    summary: 'Acquire a sandbox: warm from the pool, or created when the pool is empty',
    tag: 'sandboxes',
    auth: true,
    body: { contentType: 'application/json', schema: acquireRequestSchema, optional: true },
    responses: { 201: { description: 'Acquired and bound to the caller', content: json(sandboxInfoSchema) } },
  },
  {
    operationId: 'listSandboxes',
    method: 'get',
    path: '/v1/sandboxes',
    summary: 'Sandboxes of this deployment, filtered by session, type or status',
    tag: 'sandboxes',
    auth: true,
    query: sandboxListQuerySchema,
    responses: { 200: { description: 'Sandboxes, oldest first', content: json(sandboxListSchema) } },
  },
  {
    operationId: 'getSandbox',
    method: 'get',
    path: sandboxPath,
    summary: 'One sandbox (never its token)',
    tag: 'sandboxes',
    auth: true,
    params: sandboxParams,
    responses: { 200: { description: 'The sandbox', content: json(sandboxInfoSchema) } },
  },
  {
    operationId: 'releaseSandbox',
    method: 'delete',
    path: sandboxPath,
    summary:
      'Release: destroy the sandbox and free its port and workspace; with snapshot=true, snapshot the workspace first',
    tag: 'sandboxes',
    auth: true,
    params: sandboxParams,
    query: releaseQuerySchema,
    responses: {
      200: { description: 'Snapshotted (snapshot=true), then released', content: json(snapshotInfoSchema) },
      204: { description: 'Released' },
    },
  },
  {
    operationId: 'keepaliveSandbox',
    method: 'post',
    path: `${sandboxPath}/keepalive`,
    summary: 'Refresh the idle timer, optionally with a new idle timeout',
    tag: 'sandboxes',
    auth: true,
    params: sandboxParams,
    body: { contentType: 'application/json', schema: keepaliveRequestSchema, optional: true },
    responses: { 200: { description: 'The sandbox', content: json(sandboxInfoSchema) } },
  },
  {
    operationId: 'execInSandbox',
    method: 'post',
    path: `${sandboxPath}/exec`,
    summary: 'Run a command; with Accept: application/x-ndjson its output streams as events',
    tag: 'exec',
    auth: true,
    params: sandboxParams,
    body: { contentType: 'application/json', schema: execRequestSchema },
    responses: {
      200: {
        description: 'The result, or an NDJSON stream of events ending in `exit`',
        content: [
          { contentType: 'application/json', schema: execResultSchema },
          { contentType: NDJSON, schema: execEventSchema },
        ],
      },
    },
  },
  {
    operationId: 'readFile',
    method: 'get',
    path: `${sandboxPath}/files`,
    summary: 'Read a file',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    query: pathQuerySchema,
    responses: { 200: { description: 'The file', content: [octets] } },
  },
  {
    operationId: 'writeFile',
    method: 'put',
    path: `${sandboxPath}/files`,
    summary: 'Write a file (atomically; missing parents are created)',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    query: writeQuerySchema,
    body: octets,
    responses: { 200: { description: 'The written file', content: json(fileEntrySchema) } },
  },
  {
    operationId: 'deleteFile',
    method: 'delete',
    path: `${sandboxPath}/files`,
    summary: 'Delete a file, a symlink or a directory (recursive=true for a non-empty one)',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    query: deleteQuerySchema,
    responses: { 204: { description: 'Deleted' } },
  },
  {
    operationId: 'listFiles',
    method: 'get',
    path: `${sandboxPath}/files/list`,
    summary: 'List a directory, down to `depth` levels',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    query: listQuerySchema,
    responses: { 200: { description: 'Entries', content: json(fileListSchema) } },
  },
  {
    operationId: 'statFile',
    method: 'get',
    path: `${sandboxPath}/files/stat`,
    summary: 'Describe one path (a symlink itself, not its target)',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    query: pathQuerySchema,
    responses: { 200: { description: 'The entry', content: json(fileEntrySchema) } },
  },
  {
    operationId: 'moveFile',
    method: 'post',
    path: `${sandboxPath}/files/move`,
    summary: 'Move or rename',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    body: { contentType: 'application/json', schema: moveRequestSchema },
    responses: { 200: { description: 'The entry at its new path', content: json(fileEntrySchema) } },
  },
  {
    operationId: 'makeDirectory',
    method: 'post',
    path: `${sandboxPath}/files/mkdir`,
    summary: 'Create a directory (parents too by default)',
    tag: 'files',
    auth: true,
    params: sandboxParams,
    body: { contentType: 'application/json', schema: mkdirRequestSchema },
    responses: { 200: { description: 'The directory', content: json(fileEntrySchema) } },
  },
  {
    operationId: 'downloadArchive',
    method: 'get',
    path: `${sandboxPath}/archive`,
    summary: 'A directory as a tar stream',
    tag: 'archive',
    auth: true,
    params: sandboxParams,
    query: archiveQuerySchema,
    responses: { 200: { description: 'The tar stream', content: [tarBody, gzipBody] } },
  },
  {
    operationId: 'uploadArchive',
    method: 'put',
    path: `${sandboxPath}/archive`,
    summary: 'Unpack a tar stream into a directory',
    tag: 'archive',
    auth: true,
    params: sandboxParams,
    query: archiveQuerySchema,
    body: tarBody,
    responses: { 200: { description: 'How many entries were written', content: json(archiveExtractSchema) } },
  },
  {
    operationId: 'createSnapshot',
    method: 'post',
    path: `${sandboxPath}/snapshots`,
    summary:
      'Snapshot the workspace to the snapshot store (a gzipped tar, streamed); with a key, as its new head',
    tag: 'snapshots',
    auth: true,
    params: sandboxParams,
    body: { contentType: 'application/json', schema: snapshotRequestSchema, optional: true },
    responses: { 201: { description: 'Stored', content: json(snapshotInfoSchema) } },
  },
  {
    operationId: 'listSnapshots',
    method: 'get',
    path: '/v1/snapshots',
    summary: "Snapshots, newest first; with key, that key's versions",
    tag: 'snapshots',
    auth: true,
    query: snapshotListQuerySchema,
    responses: { 200: { description: 'Snapshots', content: json(snapshotListSchema) } },
  },
  {
    operationId: 'getSnapshot',
    method: 'get',
    path: '/v1/snapshots/:id',
    summary: 'One snapshot',
    tag: 'snapshots',
    auth: true,
    params: snapshotIdParamsSchema,
    responses: { 200: { description: 'The snapshot', content: json(snapshotInfoSchema) } },
  },
  {
    operationId: 'deleteSnapshot',
    method: 'delete',
    path: '/v1/snapshots/:id',
    summary: "Delete a snapshot; deleting a key's head moves the head back to the previous version",
    tag: 'snapshots',
    auth: true,
    params: snapshotIdParamsSchema,
    responses: { 204: { description: 'Deleted' } },
  },
  {
    operationId: 'listPools',
    method: 'get',
    path: '/v1/pools',
    summary: 'Pool targets and live counts, per type',
    tag: 'pools',
    auth: true,
    responses: { 200: { description: 'Pools', content: json(poolListSchema) } },
  },
  {
    operationId: 'resizePool',
    method: 'put',
    path: '/v1/pools/:type',
    summary: "Set a type's pool target (shared by every worker); the pool grows or shrinks to it",
    tag: 'pools',
    auth: true,
    params: poolTypeParamsSchema,
    body: { contentType: 'application/json', schema: poolResizeRequestSchema },
    responses: { 200: { description: 'The pool', content: json(poolStatusSchema) } },
  },
] as const satisfies readonly RouteSpec[];

export type OperationId = (typeof ROUTES)[number]['operationId'];
