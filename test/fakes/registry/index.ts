/**
 * A container registry on 127.0.0.1 that answers manifest lookups the way ghcr.io and Docker Hub
 * do: 401 with a Bearer challenge, an anonymous token from the realm it names, then 200 or 404
 * for the tag. It stores no images, only which tags exist.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeRegistry {
  /** `127.0.0.1:PORT`, to put before a repository: `${host}/dask/dask:tag`. */
  host: string;
  tags: Set<string>;
  /** Every request, as `METHOD path`. */
  requests: string[];
  close(): Promise<void>;
}

const TOKEN = 'anonymous-pull-token';

export async function startFakeRegistry(repository: string, tags: string[]): Promise<FakeRegistry> {
  const requests: string[] = [];
  const known = new Set(tags);
  let host = '';
  const server = http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://${host}`);
    requests.push(`${request.method} ${url.pathname}`);
    if (url.pathname === '/token') {
      const allowed =
        url.searchParams.get('scope') === `repository:${repository}:pull` &&
        url.searchParams.get('service') === 'fake-registry';
      response
        .writeHead(allowed ? 200 : 403, { 'content-type': 'application/json' })
        .end(JSON.stringify(allowed ? { token: TOKEN } : { errors: [{ code: 'DENIED' }] }));
      return;
    }
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(url.pathname);
    if (!manifest) return void response.writeHead(404).end();
    if (request.headers.authorization !== `Bearer ${TOKEN}`) {
      response
        .writeHead(401, {
          'www-authenticate': `Bearer realm="http://${host}/token",service="fake-registry",scope="repository:${manifest[1]}:pull"`,
        })
        .end();
      return;
    }
    const exists = manifest[1] === repository && known.has(manifest[2]!);
    response
      .writeHead(
        exists ? 200 : 404,
        exists ? { 'content-type': 'application/vnd.oci.image.index.v1+json' } : {},
      )
      .end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    host,
    tags: known,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
