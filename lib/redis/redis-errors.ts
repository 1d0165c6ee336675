/** Reply prefixes of a Redis that is there but cannot serve now (loading, failing over, busy). */
const TRANSIENT_REPLIES = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|MOVED|ASK|NOSCRIPT)\b/;
/** What ioredis and Node say when there is no connection to send on or to read from. */
const NO_CONNECTION = /Connection is closed|Stream isn't writeable|Cluster is ended|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|socket hang up/;

/**
 * Whether an error says Redis could not answer now (no connection, or a server that is
 * loading, failing over or busy): worth trying again later. Any other error is about
 * what was asked: a job whose key holds another type, data that does not parse.
 */
export function isTransientRedisError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'AbortError' || error.name === 'MaxRetriesPerRequestError' || error.name === 'ClusterAllFailedError') return true;
  return TRANSIENT_REPLIES.test(error.message) || NO_CONNECTION.test(error.message);
}
