/**
 * The state store could not be reached (Redis down, restarting, or refusing commands). The API maps
 * it to 503 STATE_STORE_UNAVAILABLE: the request may be retried once the store is back.
 */
export class StoreUnavailableError extends Error {
  readonly code = 'STATE_STORE_UNAVAILABLE' as const;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * Runs one exchange with Redis, turning any Redis or connection failure into StoreUnavailableError
 * naming the operation. Decoding belongs outside: a malformed value is a data fault, not an
 * unavailable store.
 */
export async function redisExchange<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new StoreUnavailableError(`state store (Redis) failed on ${operation}: ${reason}`, {
      cause: err,
    });
  }
}
