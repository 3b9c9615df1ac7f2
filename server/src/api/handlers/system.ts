/** Liveness, readiness, metrics, this API's OpenAPI document and the registered sandbox types. */
import type { sandboxTypeListSchema } from '@runtime-sandbox/contract';
import type { z } from 'zod';
import type { ApiDeps } from '../context.js';
import { buildOpenApiDocument } from '../openapi.js';
import type { readySchema } from '../schemas.js';
import type { Handlers } from './types.js';

type SystemHandlers = Pick<Handlers, 'health' | 'ready' | 'metrics' | 'openapi' | 'listSandboxTypes'>;

export function systemHandlers(deps: ApiDeps): SystemHandlers {
  const { metrics, manager, registry, config } = deps;
  let openapi: string | undefined;
  return {
    health: (c) => c.json({ status: 'ok' as const }),
    ready: async (c) => {
      await manager.checkReady();
      const body: z.infer<typeof readySchema> = { status: 'ready', checks: { store: 'ok', deployer: 'ok' } };
      return c.json(body);
    },
    metrics: async (c) => {
      const text = await metrics.registry.metrics();
      return c.body(text, 200, { 'content-type': metrics.registry.contentType });
    },
    openapi: (c) => {
      openapi ??= JSON.stringify(buildOpenApiDocument());
      return c.body(openapi, 200, { 'content-type': 'application/json' });
    },
    listSandboxTypes: async (c) => {
      const types = await Promise.all(
        registry.list().map(async (type) => ({
          name: type.name,
          description: type.description,
          image: registry.imageFor(type),
          source: registry.sourceOf(type.name) ?? 'unknown',
          resources: type.resources,
          storage: { readOnlyRootfs: type.security.readOnlyRootfs, writable: type.storage.writable },
          idleTimeoutSeconds: type.timeouts.idleSeconds ?? config.HEARTBEAT_TIMEOUT,
          ttlSeconds: type.timeouts.ttlSeconds ?? config.SANDBOX_TTL,
          pool: await manager.pool(type.name),
        })),
      );
      const body: z.infer<typeof sandboxTypeListSchema> = { types };
      return c.json(body);
    },
  };
}
