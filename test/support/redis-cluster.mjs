// Plain JavaScript, like redis-server.mjs whose servers it joins, so the compatibility
// runner (compat/run.mjs) can start a cluster too. Types: redis-cluster.d.mts.
import { spawnSync } from 'node:child_process';
import { Socket } from 'node:net';
import { startRedisServer } from './redis-server.mjs';

/** The reply of one inline command to 127.0.0.1:port, or '' when nothing answers within a second. */
function ask(port, command) {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = '';
    const done = () => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(1000, done);
    socket.once('error', done);
    socket.once('close', done);
    socket.connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    socket.on('data', (data) => {
      reply += data.toString();
      if (/\r\n$/.test(reply) && !/^\$\d+\r\n$/.test(reply)) done();
    });
  });
}

/**
 * A Redis Cluster of `masters` masters (no replicas) on free loopback ports, each a
 * startRedisServer of its own folder; resolves once every node reports cluster_state:ok.
 * `server` and `cli` name the binaries (else REDIS_SERVER_BIN and REDIS_CLI_BIN, else
 * redis-server and redis-cli): valkey-server and valkey-cli run one on Valkey.
 */
export async function startRedisCluster({ masters = 3, server = process.env.REDIS_SERVER_BIN ?? 'redis-server', cli = process.env.REDIS_CLI_BIN ?? 'redis-cli' } = {}) {
  const nodes = [];
  const stop = () => Promise.all(nodes.map((node) => node.stop()));
  try {
    for (let i = 0; i < masters; i++) {
      nodes.push(
        await startRedisServer({
          server,
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
        }),
      );
    }
    const created = spawnSync(
      cli,
      ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (created.status !== 0) throw new Error(`${cli} --cluster create failed: ${created.stderr || created.stdout}`);
    for (let i = 0; ; i++) {
      const states = await Promise.all(nodes.map((node) => ask(node.port, 'CLUSTER INFO')));
      if (states.every((state) => state.includes('cluster_state:ok'))) break;
      if (i === 200) throw new Error(`the cluster did not become ready: ${states.join(' | ')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    nodes: nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
    stop,
  };
}
