/** What every cloud fake's server does alike: listen on a free loopback port. */
import type { AddressInfo, Server } from 'node:net';

/**
 * Listens on 127.0.0.1 (or `host`, an address of namespaces the test made itself), on a port of
 * the system's choosing, and returns the port.
 */
export async function listenOnLoopback(server: Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  server.unref(); // a forgotten close() must not keep vitest's worker alive
  return (server.address() as AddressInfo).port;
}
