import { Logger } from '@nestjs/common';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { RedisUnreachableError } from '../errors/redis-unreachable.error.js';

/**
 * The two connections the module opens and closes: one for commands (auto-pipelined,
 * so loads and claims issued together travel together) and one for blocking stream reads.
 * Commands wait through an outage (maxRetriesPerRequest: null) rather than fail.
 */
export class RedisConnections {
  private readonly logger = new Logger('FlowFailureModule');

  private constructor(
    readonly commands: Redis,
    readonly blocking: Redis,
    readonly address: string,
  ) {}

  static async open(connection: ConnectionOptions | Redis): Promise<RedisConnections> {
    const commands = create(connection, { enableAutoPipelining: true, connectionName: 'flow-failure' });
    const blocking = create(connection, { connectionName: 'flow-failure-reader' });
    const address = describeAddress(commands);
    const connections = new RedisConnections(commands, blocking, address);
    try {
      await Promise.all([commands.connect(), blocking.connect()]);
    } catch (error) {
      commands.disconnect();
      blocking.disconnect();
      throw new RedisUnreachableError(address, error);
    }
    connections.reportTrouble(commands);
    connections.reportTrouble(blocking);
    return connections;
  }

  async close(): Promise<void> {
    await Promise.all([quit(this.commands), quit(this.blocking)]);
  }

  /** One warning when a connection drops, one line when it is back: no log flood during an outage. */
  private reportTrouble(client: Redis): void {
    let down = false;
    client.on('error', (error: Error) => {
      if (down) return;
      down = true;
      this.logger.warn(`Redis ${this.address} (${client.options.connectionName}): ${error.message}; reconnecting`);
    });
    client.on('ready', () => {
      if (!down) return;
      down = false;
      this.logger.log(`Redis ${this.address} (${client.options.connectionName}) is back`);
    });
  }
}

function create(connection: ConnectionOptions | Redis, extra: RedisOptions): Redis {
  const overrides: RedisOptions = { ...extra, lazyConnect: true, maxRetriesPerRequest: null };
  if (connection instanceof Redis) {
    return connection.duplicate(overrides);
  }
  const { url, ...options } = connection as RedisOptions & { url?: string };
  return url ? new Redis(url, { ...options, ...overrides }) : new Redis({ ...options, ...overrides });
}

function describeAddress(client: Redis): string {
  const { host, port, path } = client.options;
  return path ? String(path) : `${host ?? '127.0.0.1'}:${port ?? 6379}`;
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    if (client.status === 'ready') {
      await client.quit();
      return;
    }
  } catch {
    // fall through: the connection is going anyway
  }
  client.disconnect();
}
