/**
 * Wall-clock milliseconds with sub-millisecond precision. `Date.now()` has 1 ms steps, which
 * at the sub-millisecond latencies of a loopback Redis would turn every p50 into 0, 1 or 2 and
 * make ratios meaningless. performance.now() is fine-grained but counts from process start, so
 * it is anchored once to the instant Date.now() ticks over. An app process lives for minutes,
 * far too short for the two clocks to drift apart measurably.
 */
function anchor(): number {
  const start = Date.now();
  let now = start;
  while (now === start) now = Date.now(); // spin to the edge of a millisecond: the anchor is exact there
  return now - performance.now();
}

const origin = anchor();

export function preciseNow(): number {
  return origin + performance.now();
}
