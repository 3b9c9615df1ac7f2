/** Liveness, readiness, metrics, this API's OpenAPI document and the registered sandbox types. */
import type { sandboxTypeListSchema } from '@runtime-sandbox/contract';
import type { z } from 'zod';
import { messageOf, ServiceError } from '../../errors.js';
import type { ApiDeps } from '../context.js';
import { buildOpenApiDocument } from '../openapi.js';
import type { readySchema } from '../schemas.js';
import type { Handlers } from './types.js';

/** A readiness probe must answer even when a dependency hangs. */
const PROBE_TIMEOUT_MS = 2000;

type SystemHandlers = Pick<Handlers, 'health' | 'ready' | 'metrics' | 'openapi' | 'listSandboxTypes'>;

export function systemHandlers(deps: ApiDeps): SystemHandlers {
  const { store, deployer, metrics, manager, registry, config } = deps;
  let openapi: string | undefined;
  return {
    health: (c) => c.json({ status: 'ok' as const }),
    ready: async (c) => {
      await probe(() => store.ping(), 'STATE_STORE_UNAVAILABLE', `the ${store.kind} state store`);
      await probe(() => deployer.ping(), 'UPSTREAM_ERROR', `the ${deployer.kind} deployer`);
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

async function probe(
  check: () => Promise<void>,
  code: 'STATE_STORE_UNAVAILABLE' | 'UPSTREAM_ERROR',
  what: string,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)), PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([check(), timeout]);
  } catch (err) {
    throw new ServiceError(code, `not ready: ${what} does not answer (${messageOf(err)})`);
  } finally {
    clearTimeout(timer);
  }
}
