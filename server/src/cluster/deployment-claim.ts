/**
 * A server without shared state (REDIS_ENABLED=false) is the whole of its deployment: its
 * reconciler destroys every container of the deployment that no record of its own claims, so two
 * such servers of one deployment on one host would destroy each other's sandboxes. Each holds a
 * host-wide exclusive claim on its deployment id for as long as it runs: a listening unix socket in
 * Linux's abstract namespace. The kernel drops it when the process dies, however it dies, so a
 * crashed server never blocks the next start, whose reconciler then clears the leftovers.
 *
 * The claim is as wide as the network namespace: a server in a container of its own does not see
 * the claims of servers outside it.
 */
import { createHash } from 'node:crypto';
import { holdName, MAX_NAME_BYTES } from '../abstract-socket.js';
import { type Config, deploymentIdOf } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

/** How many ids a server on default settings tries: `runtime-sandbox`, `runtime-sandbox-2`, ... */
export const DEFAULT_ID_ATTEMPTS = 8;

export interface DeploymentClaim {
  readonly deploymentId: string;
  release(): Promise<void>;
}

/** Another server holds the deployment id this one must run under. */
export class DeploymentTakenError extends Error {
  constructor(readonly deploymentId: string) {
    super(
      `another runtime-sandbox server without shared state already runs deployment ${deploymentId} on this host; ` +
        'give this one its own DEPLOYMENT_ID, or share state with REDIS_ENABLED',
    );
    this.name = 'DeploymentTakenError';
  }
}

/** The claim on `deploymentId`, or null when another process holds it. */
export async function holdClaim(deploymentId: string): Promise<DeploymentClaim | null> {
  const held = await holdName(socketName(deploymentId));
  return held === null ? null : { deploymentId, release: () => held.release() };
}

/**
 * Claims this server's deployment id. An id the operator chose (`chosen`: DEPLOYMENT_ID or
 * CONTAINER_PREFIX_KEY set) is that or nothing; the default id gives way to the next free
 * `<id>-2`, `<id>-3`, ..., with a warning naming the one taken.
 */
export async function claimDeployment(
  config: Config,
  chosen: boolean,
  logger: Logger,
): Promise<DeploymentClaim> {
  const wanted = deploymentIdOf(config);
  const attempts = chosen ? 1 : DEFAULT_ID_ATTEMPTS;
  for (let n = 1; n <= attempts; n++) {
    const id = n === 1 ? wanted : `${wanted}-${n}`;
    const claim = await holdClaim(id);
    if (claim === null) continue;
    if (n > 1) {
      logger.warn(
        { deploymentId: id, taken: wanted },
        `another server without shared state runs deployment ${wanted} on this host; running as deployment ${id}`,
      );
    }
    return claim;
  }
  const error = new DeploymentTakenError(chosen ? wanted : `${wanted}-${attempts}`);
  logger.error({ deploymentId: error.deploymentId }, error.message);
  throw error;
}

/** Ids too long for a socket name are hashed. */
function socketName(deploymentId: string): string {
  const name = `runtime-sandbox/${deploymentId}`;
  if (Buffer.byteLength(name) + 1 <= MAX_NAME_BYTES) return name;
  return `runtime-sandbox/sha256:${createHash('sha256').update(deploymentId).digest('hex')}`;
}
