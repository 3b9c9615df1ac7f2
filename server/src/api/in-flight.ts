/**
 * Requests being served, counted until their answer is fully written (a streamed exec counts until
 * its last byte), so shutdown can wait for them; and the draining flag that turns new ones away.
 */
export class InFlightRequests {
  private count = 0;
  private waiters: Array<() => void> = [];
  draining = false;

  get size(): number {
    return this.count;
  }

  begin(): () => void {
    this.count++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.count--;
      if (this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
  }

  /** Resolves true once none are left, or false when `timeoutMs` passes first. */
  async drained(timeoutMs: number): Promise<boolean> {
    if (this.count === 0) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
