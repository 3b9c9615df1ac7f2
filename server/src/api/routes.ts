/**
 * The v1 route table: method, path, what each route takes and answers, and the errors of its own
 * rules. It is the one declaration of each route: the HTTP app validates path, query and body
 * with its schemas before the handler runs (handlers get the parsed values, typed from here), and
 * the OpenAPI document is generated from it, so the three cannot drift apart.
 */

import {
  acquireRequestSchema,
  archiveExtractSchema,
  archiveQuerySchema,
  deleteQuerySchema,
  type ErrorCode,
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
  pythonRunRequestSchema,
  pythonRunResultSchema,
  sandboxInfoSchema,
  sandboxListQuerySchema,
  sandboxListSchema,
  sandboxTypeListSchema,
  snapshotInfoSchema,
  snapshotListQuerySchema,
  snapshotListSchema,
  snapshotRequestSchema,
  toolCallRequestSchema,
  toolCallResultSchema,
  toolListSchema,
  writeQuerySchema,
} from '@runtime-sandbox/contract';
import type { z } from 'zod';
import { sandboxNotFound, snapshotNotFound, toolNotFound } from '../errors.js';
import {
  healthSchema,
  poolTypeParamsSchema,
  readySchema,
  releaseQuerySchema,
  sandboxIdParamsSchema,
  snapshotIdParamsSchema,
  toolParamsSchema,
} from './schemas.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** The OpenAPI tags and what each groups, in the order the document lists them. */
export const ROUTE_TAGS = {
  system: 'Probes, metrics, this document and the registered sandbox types',
  sandboxes: 'Acquire, inspect, keep alive and release sandboxes',
  exec: 'Run commands in a sandbox',
  files: "Read, write, list and move files in a sandbox's workspace",
  archive: 'Move directories in and out as tar streams',
  tools: "List and call the sandbox's tools; run Python in its stateful interpreter",
  snapshots: 'Take, list and delete workspace snapshots; restores ride on acquire',
  pools: 'Warm pools: targets and live counts',
} as const;

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
  tag: keyof typeof ROUTE_TAGS;
  /** false: answers without a bearer token even when BEARER_TOKEN is set. */
  auth: boolean;
  params?: z.ZodObject;
  /**
   * A malformed path parameter names nothing, so it is answered as an unknown one would be (this
   * error, e.g. SANDBOX_NOT_FOUND) rather than as VALIDATION_ERROR.
   */
  unknownParams?: (params: Record<string, string>) => Error;
  query?: z.ZodObject;
  body?: BodySpec;
  /** Success answers; errors are answered as ErrorBody with the status their code names. */
  responses: Record<number, { description: string; content?: BodySpec[] }>;
  /**
   * The codes this route's own rules answer with. Those that follow from its shape (auth,
   * validation, body limits, the server's own faults) are added by api/route-errors.ts.
   */
  errors: readonly ErrorCode[];
}

const json = (schema: z.ZodType): BodySpec[] => [{ contentType: 'application/json', schema }];
const octets: BodySpec = { contentType: 'application/octet-stream', description: 'Raw bytes' };
const tarBody: BodySpec = { contentType: 'application/x-tar', description: 'A tar stream' };
const gzipBody: BodySpec = {
  contentType: 'application/gzip',
  description: 'A gzipped tar stream (gzip=true)',
};
const sandboxPath = '/v1/sandboxes/:id';
/** The path parameters of a sandbox's routes; a malformed id is an unknown sandbox. */
const sandboxParams = {
  params: sandboxIdParamsSchema,
  unknownParams: (params: Record<string, string>) => sandboxNotFound(params.id ?? ''),
};
/** A tool's path parameters: a malformed sandbox id is an unknown sandbox, a malformed name an unknown tool. */
const toolParams = {
  params: toolParamsSchema,
  unknownParams: (params: Record<string, string>) =>
    sandboxIdParamsSchema.safeParse(params).success
      ? toolNotFound(params.name ?? '')
      : sandboxNotFound(params.id ?? ''),
};
const snapshotParams = {
  params: snapshotIdParamsSchema,
  unknownParams: (params: Record<string, string>) => snapshotNotFound(params.id ?? ''),
};

/** A claimed sandbox of the caller's, looked up in the state store. */
const HELD_SANDBOX = ['SANDBOX_NOT_FOUND', 'SANDBOX_NOT_READY', 'STATE_STORE_UNAVAILABLE'] as const;
/** A call forwarded to the sandbox's sandboxd. */
const SANDBOXD_CALL = [...HELD_SANDBOX, 'UPSTREAM_ERROR', 'TIMEOUT'] as const;
/** A path inside the workspace. */
const WORKSPACE_PATH = ['PATH_OUTSIDE_WORKSPACE', 'PERMISSION_DENIED', 'FILE_NOT_FOUND'] as const;
const SNAPSHOT_LOOKUP = ['SNAPSHOT_NOT_FOUND', 'STATE_STORE_UNAVAILABLE'] as const;

export const ROUTES = [
  {
    operationId: 'health',
    method: 'get',
    path: '/healthz',
    summary: 'Liveness: the process answers',
    tag: 'system',
    auth: false,
    responses: { 200: { description: 'Alive', content: json(healthSchema) } },
    errors: [],
  },
  {
    operationId: 'ready',
    method: 'get',
    path: '/readyz',
    summary: 'Readiness: the state store and the deployer answer, and the server is not shutting down',
    tag: 'system',
    auth: false,
    responses: { 200: { description: 'Ready', content: json(readySchema) } },
    errors: ['STATE_STORE_UNAVAILABLE', 'DEPLOYER_UNAVAILABLE'],
  },
  {
    operationId: 'metrics',
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'Prometheus text format', content: [{ contentType: 'text/plain' }] } },
    errors: [],
  },
  {
    operationId: 'openapi',
    method: 'get',
    path: '/v1/openapi.json',
    summary: 'This document',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'OpenAPI 3.1', content: [{ contentType: 'application/json' }] } },
    errors: [],
  },
  {
    operationId: 'listSandboxTypes',
    method: 'get',
    path: '/v1/sandbox-types',
    summary: 'Registered sandbox types, their images and pool status',
    tag: 'system',
    auth: true,
    responses: { 200: { description: 'Types', content: json(sandboxTypeListSchema) } },
    errors: ['STATE_STORE_UNAVAILABLE'],
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
    errors: [
      'SANDBOX_TYPE_NOT_FOUND',
      'NETWORK_POLICY_DENIED',
      'CAPACITY_EXCEEDED',
      'TENANT_LIMIT_EXCEEDED',
      'SANDBOX_CREATE_FAILED',
      'DEPLOYER_UNAVAILABLE',
      'UPSTREAM_ERROR',
      'TIMEOUT',
      ...SNAPSHOT_LOOKUP,
      'RESTORE_FAILED',
    ],
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
    errors: ['STATE_STORE_UNAVAILABLE'],
  },
  {
    operationId: 'getSandbox',
    method: 'get',
    path: sandboxPath,
    summary: 'One sandbox (never its token)',
    tag: 'sandboxes',
    auth: true,
    ...sandboxParams,
    responses: { 200: { description: 'The sandbox', content: json(sandboxInfoSchema) } },
    errors: ['SANDBOX_NOT_FOUND', 'STATE_STORE_UNAVAILABLE'],
  },
  {
    operationId: 'releaseSandbox',
    method: 'delete',
    path: sandboxPath,
    summary:
      'Release: destroy the sandbox and free its port and workspace; with snapshot=true, snapshot the workspace first',
    tag: 'sandboxes',
    auth: true,
    ...sandboxParams,
    query: releaseQuerySchema,
    responses: {
      200: { description: 'Snapshotted (snapshot=true), then released', content: json(snapshotInfoSchema) },
      204: { description: 'Released' },
    },
    errors: [...SANDBOXD_CALL, 'SNAPSHOT_CONFLICT', 'SNAPSHOT_FAILED', 'TENANT_LIMIT_EXCEEDED'],
  },
  {
    operationId: 'keepaliveSandbox',
    method: 'post',
    path: `${sandboxPath}/keepalive`,
    summary: 'Refresh the idle timer, optionally with a new idle timeout',
    tag: 'sandboxes',
    auth: true,
    ...sandboxParams,
    body: { contentType: 'application/json', schema: keepaliveRequestSchema, optional: true },
    responses: { 200: { description: 'The sandbox', content: json(sandboxInfoSchema) } },
    errors: HELD_SANDBOX,
  },
  {
    operationId: 'execInSandbox',
    method: 'post',
    path: `${sandboxPath}/exec`,
    summary: 'Run a command; with Accept: application/x-ndjson its output streams as events',
    tag: 'exec',
    auth: true,
    ...sandboxParams,
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
    errors: [...SANDBOXD_CALL, 'FILE_NOT_FOUND', 'NOT_A_DIRECTORY', 'PATH_OUTSIDE_WORKSPACE'],
  },
  {
    operationId: 'readFile',
    method: 'get',
    path: `${sandboxPath}/files`,
    summary: 'Read a file',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    query: pathQuerySchema,
    responses: { 200: { description: 'The file', content: [octets] } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'IS_A_DIRECTORY'],
  },
  {
    operationId: 'writeFile',
    method: 'put',
    path: `${sandboxPath}/files`,
    summary: 'Write a file (atomically; missing parents are created)',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    query: writeQuerySchema,
    body: octets,
    responses: { 200: { description: 'The written file', content: json(fileEntrySchema) } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'IS_A_DIRECTORY', 'NOT_A_DIRECTORY', 'QUOTA_EXCEEDED'],
  },
  {
    operationId: 'deleteFile',
    method: 'delete',
    path: `${sandboxPath}/files`,
    summary: 'Delete a file, a symlink or a directory (recursive=true for a non-empty one)',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    query: deleteQuerySchema,
    responses: { 204: { description: 'Deleted' } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'DIRECTORY_NOT_EMPTY'],
  },
  {
    operationId: 'listFiles',
    method: 'get',
    path: `${sandboxPath}/files/list`,
    summary: 'List a directory, down to `depth` levels',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    query: listQuerySchema,
    responses: { 200: { description: 'Entries', content: json(fileListSchema) } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'NOT_A_DIRECTORY'],
  },
  {
    operationId: 'statFile',
    method: 'get',
    path: `${sandboxPath}/files/stat`,
    summary: 'Describe one path (a symlink itself, not its target)',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    query: pathQuerySchema,
    responses: { 200: { description: 'The entry', content: json(fileEntrySchema) } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH],
  },
  {
    operationId: 'moveFile',
    method: 'post',
    path: `${sandboxPath}/files/move`,
    summary: 'Move or rename',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    body: { contentType: 'application/json', schema: moveRequestSchema },
    responses: { 200: { description: 'The entry at its new path', content: json(fileEntrySchema) } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'ALREADY_EXISTS', 'NOT_A_DIRECTORY', 'QUOTA_EXCEEDED'],
  },
  {
    operationId: 'makeDirectory',
    method: 'post',
    path: `${sandboxPath}/files/mkdir`,
    summary: 'Create a directory (parents too by default)',
    tag: 'files',
    auth: true,
    ...sandboxParams,
    body: { contentType: 'application/json', schema: mkdirRequestSchema },
    responses: { 200: { description: 'The directory', content: json(fileEntrySchema) } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'ALREADY_EXISTS', 'NOT_A_DIRECTORY', 'QUOTA_EXCEEDED'],
  },
  {
    operationId: 'downloadArchive',
    method: 'get',
    path: `${sandboxPath}/archive`,
    summary: 'A directory as a tar stream',
    tag: 'archive',
    auth: true,
    ...sandboxParams,
    query: archiveQuerySchema,
    responses: { 200: { description: 'The tar stream', content: [tarBody, gzipBody] } },
    errors: [...SANDBOXD_CALL, ...WORKSPACE_PATH, 'NOT_A_DIRECTORY'],
  },
  {
    operationId: 'uploadArchive',
    method: 'put',
    path: `${sandboxPath}/archive`,
    summary: 'Unpack a tar stream into a directory',
    tag: 'archive',
    auth: true,
    ...sandboxParams,
    query: archiveQuerySchema,
    body: tarBody,
    responses: { 200: { description: 'How many entries were written', content: json(archiveExtractSchema) } },
    errors: [
      ...SANDBOXD_CALL,
      ...WORKSPACE_PATH,
      'NOT_A_DIRECTORY',
      'INVALID_ARCHIVE',
      'UNSAFE_ARCHIVE_ENTRY',
      'QUOTA_EXCEEDED',
    ],
  },
  {
    operationId: 'listTools',
    method: 'get',
    path: `${sandboxPath}/tools`,
    summary: "The sandbox's tools (built-in: run_shell_command, run_ipython_cell), each with a JSON schema",
    tag: 'tools',
    auth: true,
    ...sandboxParams,
    responses: { 200: { description: 'Tools', content: json(toolListSchema) } },
    errors: SANDBOXD_CALL,
  },
  {
    operationId: 'callTool',
    method: 'post',
    path: `${sandboxPath}/tools/:name`,
    summary: 'Call a tool with arguments; isError follows the exit code or exception, not stderr',
    tag: 'tools',
    auth: true,
    ...toolParams,
    body: { contentType: 'application/json', schema: toolCallRequestSchema, optional: true },
    responses: { 200: { description: 'The tool result', content: json(toolCallResultSchema) } },
    errors: [
      ...SANDBOXD_CALL,
      'TOOL_NOT_FOUND',
      'INVALID_TOOL_ARGUMENTS',
      'PYTHON_CONTEXT_LIMIT',
      'PYTHON_UNAVAILABLE',
    ],
  },
  {
    operationId: 'runPython',
    method: 'post',
    path: `${sandboxPath}/python`,
    summary: "Run a cell in one of the sandbox's stateful Python interpreters (one per context)",
    tag: 'tools',
    auth: true,
    ...sandboxParams,
    body: { contentType: 'application/json', schema: pythonRunRequestSchema },
    responses: { 200: { description: 'The cell result', content: json(pythonRunResultSchema) } },
    errors: [...SANDBOXD_CALL, 'PYTHON_CONTEXT_LIMIT', 'PYTHON_UNAVAILABLE'],
  },
  {
    operationId: 'createSnapshot',
    method: 'post',
    path: `${sandboxPath}/snapshots`,
    summary:
      'Snapshot the workspace to the snapshot store (a gzipped tar, streamed); with a key, as its new head',
    tag: 'snapshots',
    auth: true,
    ...sandboxParams,
    body: { contentType: 'application/json', schema: snapshotRequestSchema, optional: true },
    responses: { 201: { description: 'Stored', content: json(snapshotInfoSchema) } },
    errors: [...SANDBOXD_CALL, 'SNAPSHOT_CONFLICT', 'SNAPSHOT_FAILED', 'TENANT_LIMIT_EXCEEDED'],
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
    errors: ['STATE_STORE_UNAVAILABLE'],
  },
  {
    operationId: 'getSnapshot',
    method: 'get',
    path: '/v1/snapshots/:id',
    summary: 'One snapshot',
    tag: 'snapshots',
    auth: true,
    ...snapshotParams,
    responses: { 200: { description: 'The snapshot', content: json(snapshotInfoSchema) } },
    errors: SNAPSHOT_LOOKUP,
  },
  {
    operationId: 'deleteSnapshot',
    method: 'delete',
    path: '/v1/snapshots/:id',
    summary: "Delete a snapshot; deleting a key's head moves the head back to the previous version",
    tag: 'snapshots',
    auth: true,
    ...snapshotParams,
    responses: { 204: { description: 'Deleted' } },
    errors: SNAPSHOT_LOOKUP,
  },
  {
    operationId: 'listPools',
    method: 'get',
    path: '/v1/pools',
    summary: 'Pool targets and live counts, per type',
    tag: 'pools',
    auth: true,
    responses: { 200: { description: 'Pools', content: json(poolListSchema) } },
    errors: ['STATE_STORE_UNAVAILABLE'],
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
    errors: ['FORBIDDEN', 'SANDBOX_TYPE_NOT_FOUND', 'STATE_STORE_UNAVAILABLE'],
  },
] as const satisfies readonly RouteSpec[];

export type OperationId = (typeof ROUTES)[number]['operationId'];
