/**
 * The shapes of the v1 API that only the server has: path parameters, the release query and the
 * server's own health answers. Everything the SDK and sandboxd share is in @runtime-sandbox/contract,
 * which the route table (routes.ts) uses directly.
 */
import {
  EXPECTED_HEAD,
  snapshotIdSchema,
  snapshotKeySchema,
  toolNameSchema,
  typeNameSchema,
} from '@runtime-sandbox/contract';
import { z } from 'zod';

export const sandboxIdParamsSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'not a sandbox id'),
});

export const toolParamsSchema = sandboxIdParamsSchema.extend({ name: toolNameSchema });

export const poolTypeParamsSchema = z.object({ type: typeNameSchema });

export const snapshotIdParamsSchema = z.object({ id: snapshotIdSchema });

export const releaseQuerySchema = z
  .object({
    snapshot: z
      .enum(['true', 'false'])
      .default('false')
      .describe('Snapshot the workspace first; when the snapshot fails the sandbox is not released'),
    key: snapshotKeySchema.optional().describe('With snapshot=true: the key the snapshot is added to'),
    expectedHead: z
      .union([snapshotIdSchema, z.literal('')])
      .optional()
      .describe(`With snapshot=true and a key: ${EXPECTED_HEAD}; empty: the key must have no snapshot yet`),
  })
  .refine(
    (query) => query.snapshot === 'true' || (query.key === undefined && query.expectedHead === undefined),
    {
      message: 'key and expectedHead need snapshot=true',
      path: ['snapshot'],
    },
  )
  .refine((query) => query.expectedHead === undefined || query.key !== undefined, {
    message: 'expectedHead needs a key',
    path: ['expectedHead'],
  });

export const healthSchema = z.object({ status: z.literal('ok') });

export const readySchema = z.object({
  status: z.literal('ready'),
  checks: z.object({ store: z.literal('ok'), deployer: z.literal('ok') }),
});
