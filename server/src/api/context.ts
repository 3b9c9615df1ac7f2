/** What every handler gets: the Hono context typing and the server's parts. */
import type { HttpBindings } from '@hono/node-server';
import type { ErrorCode } from '@runtime-sandbox/contract';
import type { Context } from 'hono';
import type { Config } from '../config/schema.js';
import type { DataPlane } from '../manager/data-plane.js';
import type { SandboxManager } from '../manager/sandbox-manager.js';
import type { SnapshotService } from '../manager/snapshot-service.js';
import type { Logger } from '../observability/logger.js';
import type { ServerMetrics } from '../observability/metrics.js';
import type { SandboxTypeRegistry } from '../sandbox-types/registry.js';
import type { TenantKeys } from '../tenants/api-keys.js';
import type { Caller } from '../tenants/caller.js';
import type { BodyLimits, JsonBodyLimits } from './body-limits.js';
import type { InFlightRequests } from './in-flight.js';

export interface AppEnv {
  Bindings: HttpBindings;
  /**
   * `errorCode`: set by every error answer, for the access log and the error counter. `caller`:
   * who the request acts for, set by bearerAuth (the admin on open paths and with auth off).
   */
  Variables: {
    requestId: string;
    errorCode: ErrorCode | undefined;
    caller: Caller;
    /** Run once the handler has answered: gives back what it held for the request (JSON body bytes). */
    afterHandler: Array<() => void>;
  };
}

export type AppContext = Context<AppEnv>;

export interface ApiDeps {
  config: Config;
  manager: SandboxManager;
  /** Exec, files and archives: the named operations forwarded to each sandbox's sandboxd. */
  dataPlane: DataPlane;
  snapshots: SnapshotService;
  registry: SandboxTypeRegistry;
  metrics: ServerMetrics;
  logger: Logger;
  inFlight: InFlightRequests;
  /** Bounds on request bodies: JSON ones (held whole) and raw uploads (streamed). */
  bodies: { json: JsonBodyLimits; upload: BodyLimits };
  /** The tenants' keys (API_KEYS_FILE); undefined without tenants. */
  tenantKeys: TenantKeys | undefined;
}
