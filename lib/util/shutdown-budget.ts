/**
 * One time budget for the whole of `app.close()`: each step gets what the steps before it
 * left, so that the shutdown ends within `shutdownTimeoutMs` (and a small floor for
 * closing the connections) whatever Redis does, instead of each step waiting its own timeout.
 */
export class ShutdownBudget {
  private readonly deadline: number;

  constructor(totalMs: number) {
    this.deadline = performance.now() + totalMs;
  }

  /** Milliseconds left, never below `floorMs`. */
  left(floorMs = 0): number {
    return Math.max(floorMs, Math.floor(this.deadline - performance.now()));
  }
}
