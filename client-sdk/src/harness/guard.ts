/**
 * Execution guards serialise turns on one workspace key: a turn holds a lease on the key from
 * before it touches the sandbox until after its snapshot is written. Each lease carries a fencing
 * token that grows with every grant, a signal that aborts when the lease is lost, and `assertHeld`,
 * which the session calls right before writing the snapshot. `InProcessGuard` serves one process;
 * `RedisGuard` (./redis-guard.ts) serves many.
 */
import { ConflictError, TimeoutError } from '../errors.js';

/** How long `acquire` waits for a busy key by default, milliseconds. */
export const DEFAULT_GUARD_WAIT_MS = 120_000;

export interface GuardLease {
  readonly key: string;
  /** Larger than the token of every earlier lease on the key. */
  readonly fencingToken: number;
  /** Aborted, with a LeaseLostError as its reason, when the lease is lost (expired or taken over). */
  readonly signal: AbortSignal;
  /** Resolves while the lease is still held under this fencing token; else throws LeaseLostError. */
  assertHeld(): Promise<void>;
  /** Gives the key to the next waiter. Never throws: a lease that cannot be released expires on its own. */
  release(): Promise<void>;
}

export interface AcquireOptions {
  /** Longest wait for a busy key, milliseconds; then GuardTimeoutError. Default `DEFAULT_GUARD_WAIT_MS`. */
  waitMs?: number;
  /** Stops waiting (rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface ExecutionGuard {
  acquire(key: string, options?: AcquireOptions): Promise<GuardLease>;
}

/** The key stayed busy for the whole wait. */
export class GuardTimeoutError extends TimeoutError {
  constructor(key: string, waitMs: number) {
    super({
      code: 'TIMEOUT',
      message: `the workspace ${key} stayed busy for ${waitMs} ms (another turn holds it)`,
      details: { key, waitMs },
    });
  }
}

/**
 * The lease was lost before the turn's snapshot was written: another turn may own the key now, so
 * this turn's work is not persisted. A ConflictError with code SNAPSHOT_CONFLICT, like a lost
 * compare-and-swap on the key's head.
 */
export class LeaseLostError extends ConflictError {
  constructor(key: string, fencingToken: number, reason: string, cause?: unknown) {
    super({
      code: 'SNAPSHOT_CONFLICT',
      message: `the lease on ${key} (fencing token ${fencingToken}) was lost: ${reason}`,
      details: { key, fencingToken, reason },
      cause,
    });
  }
}

interface KeyState {
  /** Turns waiting for the key, first come first served. */
  waiters: Array<() => void>;
}

/** Serialises turns on a key within this process: a FIFO queue per key. */
export class InProcessGuard implements ExecutionGuard {
  private readonly held = new Map<string, KeyState>();
  private lastToken = 0;

  async acquire(key: string, options: AcquireOptions = {}): Promise<GuardLease> {
    const state = this.held.get(key);
    if (state === undefined) {
      this.held.set(key, { waiters: [] });
    } else {
      await waitTurn(state, key, options);
    }
    return this.lease(key);
  }

  private lease(key: string): GuardLease {
    const fencingToken = ++this.lastToken;
    let released = false;
    return {
      key,
      fencingToken,
      // Nothing else in the process can take the key while this lease holds it.
      signal: new AbortController().signal,
      assertHeld: async () => {
        if (released) throw new LeaseLostError(key, fencingToken, 'it was released');
      },
      release: async () => {
        if (released) return;
        released = true;
        const state = this.held.get(key);
        const next = state?.waiters.shift();
        if (next) next();
        else this.held.delete(key);
      },
    };
  }
}

/** Waits in the key's queue until granted, the wait runs out, or the signal aborts. */
function waitTurn(state: KeyState, key: string, options: AcquireOptions): Promise<void> {
  const waitMs = options.waitMs ?? DEFAULT_GUARD_WAIT_MS;
  const { signal } = options;
  return new Promise<void>((resolve, reject) => {
    const leave = (error: unknown) => {
      const index = state.waiters.indexOf(grant);
      if (index !== -1) state.waiters.splice(index, 1);
      cleanUp();
      reject(error);
    };
    const onAbort = () => leave(signal?.reason);
    const timer = setTimeout(() => leave(new GuardTimeoutError(key, waitMs)), waitMs);
    const cleanUp = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    const grant = () => {
      cleanUp();
      resolve();
    };
    if (signal?.aborted) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    state.waiters.push(grant);
  });
}
