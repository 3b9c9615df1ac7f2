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
