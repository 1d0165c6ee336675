import { Worker } from 'node:worker_threads';

/**
 * Wall-clock milliseconds with sub-millisecond precision, on the clock of `Date.now()`
 * (which is what `job.finishedOn` is read from).
 *
 * `Date.now()` has 1 ms steps, which at the sub-millisecond latencies of a loopback Redis
 * would turn every p50 into 0, 1 or 2. The monotonic clock is fine-grained, but the wall
 * clock moves against it: on this VM, by 1 to 1.6 ms within seconds of a process's start
 * (measured with the anchor below taken every 5 s). Anchored once per process, each app
 * process would carry its own offset of up to a millisecond, enough to move the baseline's
 * p50 between 0.53 ms and 1.02 ms from one run to the next.
 *
 * So a worker thread re-anchors every ANCHOR_EVERY_MS: it spins to the instant `Date.now()`
 * ticks over and publishes `wall - monotonic` there; the app's thread only reads it (it never
 * spins, so the measurement does not delay what it measures).
 */
const ANCHOR_EVERY_MS = 100;

const ANCHOR_SOURCE = `
const { workerData } = require('node:worker_threads');
const offset = new BigInt64Array(workerData.buffer);
function anchor() {
  let previous = Date.now();
  let before = process.hrtime.bigint();
  for (;;) {
    const at = process.hrtime.bigint();
    const wall = Date.now();
    if (wall !== previous) {
      // Preempted between the two reads: the tick's instant is unknown; try next time.
      if (at - before < 20000n) Atomics.store(offset, 0, BigInt(wall) * 1000000n - at);
      return;
    }
    previous = wall;
    before = at;
  }
}
anchor();
setInterval(anchor, ${ANCHOR_EVERY_MS});
`;

const offsetNs = new BigInt64Array(new SharedArrayBuffer(8));
Atomics.store(offsetNs, 0, anchorHere());
// execArgv: [] so that a profiled app (--cpu-prof) profiles only its own thread: the thread's
// profile would be written under the same name and replace it.
new Worker(ANCHOR_SOURCE, { eval: true, execArgv: [], workerData: { buffer: offsetNs.buffer } }).unref();

/** The first anchor, before the thread's: spins up to 1 ms once, at start-up. */
function anchorHere(): bigint {
  const start = Date.now();
  let wall = start;
  while (wall === start) wall = Date.now();
  return BigInt(wall) * 1_000_000n - process.hrtime.bigint();
}

export function preciseNow(): number {
  return Number(process.hrtime.bigint() + Atomics.load(offsetNs, 0)) / 1e6;
}
