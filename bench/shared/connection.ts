/** host/port of a redis:// URL, in the shape bullmq's `connection` option takes. */
export function connectionOf(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}
