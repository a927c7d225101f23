// A TCP proxy in front of the server whose connections the test can cut, as a network blip
// or a load balancer restart would: `drop()` resets every open connection (the client sees
// ECONNRESET, grpc-js reports UNAVAILABLE) and new connections go through again.
import { createServer, connect as tcpConnect } from 'node:net';
import { once } from 'node:events';

/**
 * @param {string} target host:port to forward to
 * @returns {Promise<{ target: string, drop(): number, close(): Promise<void> }>}
 */
export async function startProxy(target) {
  const [host, port] = splitTarget(target);
  /** @type {Set<import('node:net').Socket>} */
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = tcpConnect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    target: `127.0.0.1:${address.port}`,
    drop() {
      const open = sockets.size;
      for (const socket of sockets) socket.resetAndDestroy();
      return open;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * @param {string} target
 * @returns {[string, number]}
 */
function splitTarget(target) {
  const at = target.lastIndexOf(':');
  return [target.slice(0, at).replace(/^\[|\]$/g, ''), Number(target.slice(at + 1))];
}
