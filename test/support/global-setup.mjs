import { REDIS_HELP, hasRedisServerBinary, redisAnswers, startRedisServer } from './redis-server.mjs';

/** REDIS_URL, else 127.0.0.1:6379, else a redis-server of our own on a free port. */
export default async function globalSetup() {
  if (process.env.REDIS_URL) return;
  if (await redisAnswers('127.0.0.1', 6379)) {
    process.env.REDIS_URL = 'redis://127.0.0.1:6379';
    return;
  }
  if (!hasRedisServerBinary()) throw new Error(REDIS_HELP);
  globalThis.__flowFailureRedis = await startRedisServer();
  process.env.REDIS_URL = globalThis.__flowFailureRedis.url;
  console.log(`\nNo Redis at 127.0.0.1:6379: started redis-server at ${process.env.REDIS_URL} for the tests`);
}
