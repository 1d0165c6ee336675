import { sleep } from './wait.js';

/**
 * Calls `send(from, count)` in ticks so that `total` items go out at `perSecond`. The split
 * into ticks is fixed in advance (tick i always sends the same items), so the number of
 * producer commands does not depend on timer jitter, and command counts of variants compare
 * exactly. A late tick is sent at once: the producer catches up instead of slowing down.
 */
export async function sendPaced(
  total: number,
  perSecond: number,
  tickMs: number,
  send: (from: number, count: number) => Promise<void>,
): Promise<{ seconds: number }> {
  const ticks = Math.max(1, Math.ceil((total / perSecond) * (1000 / tickMs)));
  const start = Date.now();
  const inFlight: Promise<void>[] = [];
  for (let tick = 0; tick < ticks; tick++) {
    const from = Math.floor((tick * total) / ticks);
    const to = Math.floor(((tick + 1) * total) / ticks);
    const due = start + tick * tickMs;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    // Not awaited: a slow reply must not hold back the next tick (that would lower the rate).
    if (to > from) inFlight.push(send(from, to - from));
  }
  await Promise.all(inFlight);
  return { seconds: (Date.now() - start) / 1000 };
}
