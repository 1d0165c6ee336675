/** The second argument of every handler. */
export interface HandlerContext {
  /** 1 for the first run of this handler for this failure; counts every run, including ones whose process died. */
  attempt: number;
  /**
   * Aborted when the run passes `handlerTimeoutMs` (the attempt has failed by then, and is
   * tried again or kept as a dead letter) and when the app shuts down (the run is handed to
   * another instance). Pass it to `fetch`, HTTP clients and database drivers, or check
   * `signal.aborted` between steps, so that an abandoned run stops.
   */
  signal: AbortSignal;
}
