/** What bounds a request body: its own size, and how long it may pause. */
export interface BodyLimits {
  maxBytes: number;
  idleTimeoutMs: number;
}

/** JSON bodies are held whole, so they also draw on the worker's budget while they are read. */
export interface JsonBodyLimits extends BodyLimits {
  budget: ByteBudget;
}

/**
 * A count of bytes a worker may hold at once (JSON bodies being read and parsed). Taking is
 * all-or-nothing and never waits: a request that does not fit is turned away, so many large bodies
 * at once cannot grow the heap past the budget, and no connection queues behind another.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  /**
   * An empty hold that grows as a body arrives: `grow` takes more bytes if they fit (false when
   * they do not, taking nothing), `release` gives back all it took (safe to call twice).
   */
  hold(): { grow(bytes: number): boolean; release(): void } {
    let held = 0;
    return {
      grow: (bytes) => {
        if (this.used + bytes > this.capacity) return false;
        this.used += bytes;
        held += bytes;
        return true;
      },
      release: () => {
        this.used -= held;
        held = 0;
      },
    };
  }
}
