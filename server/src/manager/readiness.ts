/** Readiness: the state store and the deployer each answer within a bound, or the probe says which does not. */
import type { Deployer } from '../deployers/deployer.js';
import { messageOf, ServiceError } from '../errors.js';
import type { StateStore } from '../state/state-store.js';

/** A readiness probe must answer even when a dependency hangs. */
const PROBE_TIMEOUT_MS = 2000;

/** Throws STATE_STORE_UNAVAILABLE or DEPLOYER_UNAVAILABLE naming what does not answer. */
export async function checkReady({
  store,
  deployer,
}: {
  store: StateStore;
  deployer: Deployer;
}): Promise<void> {
  await probe(() => store.ping(), 'STATE_STORE_UNAVAILABLE', `the ${store.kind} state store`);
  await probe(() => deployer.ping(), 'DEPLOYER_UNAVAILABLE', `the ${deployer.kind} deployer`);
}

async function probe(
  check: () => Promise<void>,
  code: 'STATE_STORE_UNAVAILABLE' | 'DEPLOYER_UNAVAILABLE',
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
