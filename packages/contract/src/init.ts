/**
 * sandboxd's lifecycle routes: `POST /init`, which the server sends once to bind a claimed sandbox
 * to its caller, and `GET /healthz` (no auth), which answers the same shape as /init.
 */
import { z } from 'zod';
import { envSchema } from './env.js';

export const initRequestSchema = z.strictObject({
  /** The token that replaces the boot token; every later call must carry it. */
  token: z.string().min(16).max(512),
  /** Env given to every process this sandbox runs from now on (merged over the image's env). */
  env: envSchema.optional(),
  /** Workspace root; defaults to the one given at boot. Must be an existing directory. */
  workspaceRoot: z.string().startsWith('/').optional(),
});
export type InitRequest = z.input<typeof initRequestSchema>;

export const sandboxdHealthSchema = z.object({
  status: z.literal('ok'),
  /** Whether a server has bound this sandboxd to a caller (`POST /init`). */
  initialized: z.boolean(),
});
/** sandboxd's `GET /healthz` answer (direct mode) and its answer to `POST /init`. */
export type SandboxdHealth = z.output<typeof sandboxdHealthSchema>;
