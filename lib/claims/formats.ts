/**
 * The strings the module stores, as lua/includes/formats.lua builds them (a test checks
 * that both give the same strings).
 */

/** `${queueName}:${jobId}:${finishedOn}`: every source and replica derives the same one. */
export function occurrenceId(queueName: string, jobId: string, finishedOn: number): string {
  return `${queueName}:${jobId}:${finishedOn}`;
}

/** The parts of an occurrence id (a queue name has no ':'; a job id may). */
export function parseOccurrenceId(id: string): { queueName: string; jobId: string; finishedOn: number } | undefined {
  const first = id.indexOf(':');
  const last = id.lastIndexOf(':');
  const finishedOn = id.slice(last + 1);
  if (first <= 0 || last <= first + 1 || !/^\d+$/.test(finishedOn)) return undefined;
  return { queueName: id.slice(0, first), jobId: id.slice(first + 1, last), finishedOn: Number(finishedOn) };
}

/** A claim is one (handler, occurrence) pair; the handler key never contains '|'. */
export function claimMember(handlerKey: string, occurrenceId: string): string {
  return `${handlerKey}|${occurrenceId}`;
}

export function parseClaimMember(member: string): { handlerKey: string; occurrenceId: string } | undefined {
  const bar = member.indexOf('|');
  return bar > 0 ? { handlerKey: member.slice(0, bar), occurrenceId: member.slice(bar + 1) } : undefined;
}
