/**
 * The container image cloud VMs run Dask from: by default the Dask project's image at the
 * versions of this machine's distributed and Python, so the Client here and the cluster match.
 * The registry is asked (anonymously, as Docker would) whether the tag exists, so a missing one
 * is said now rather than by a VM that powers off ten minutes later.
 */
import { DcpError, usageError } from '../errors.js';
import { daskVersions, findPython } from './python.js';

export const DEFAULT_IMAGE_REPOSITORY = 'ghcr.io/dask/dask';

export type ImageLookup = 'found' | 'missing' | 'unknown';

interface Reference {
  registry: string;
  repository: string;
  tag: string;
}

/** `ghcr.io/dask/dask:2024.5.0`, `daskdev/dask`, `localhost:5000/x:1` → registry, repository, tag. */
export function parseReference(image: string): Reference {
  const slash = image.indexOf('/');
  const first = slash < 0 ? '' : image.slice(0, slash);
  // Docker's rule: the first part names a registry when it looks like a host.
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const rest = hasRegistry ? image.slice(slash + 1) : image;
  const colon = rest.lastIndexOf(':');
  const tagged = colon > rest.lastIndexOf('/');
  const path = tagged ? rest.slice(0, colon) : rest;
  return {
    registry: hasRegistry ? first : 'registry-1.docker.io',
    repository: !hasRegistry && !path.includes('/') ? `library/${path}` : path,
    tag: tagged ? rest.slice(colon + 1) : 'latest',
  };
}

const MANIFESTS = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/**
 * Whether the registry has this image, asked the way Docker asks (the distribution API, with the
 * anonymous token its challenge offers). `unknown` when it cannot say: offline, private, odd.
 */
export async function lookupImage(image: string, timeoutMs = 10_000): Promise<ImageLookup> {
  const { registry, repository, tag } = parseReference(image);
  if (tag.includes('@') || image.includes('@')) return 'unknown';
  // Docker itself talks plain HTTP to a registry on this machine.
  const scheme = /^(localhost|127\.\d+\.\d+\.\d+)(:\d+)?$/.test(registry) ? 'http' : 'https';
  const url = `${scheme}://${registry}/v2/${repository}/manifests/${tag}`;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    let response = await fetch(url, { method: 'HEAD', headers: { Accept: MANIFESTS }, signal });
    if (response.status === 401) {
      const challenge = response.headers.get('www-authenticate') ?? '';
      const params = Object.fromEntries(
        [...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1]!, match[2]!]),
      );
      if (!/^bearer /i.test(challenge) || !params.realm) return 'unknown';
      const tokenUrl = new URL(params.realm);
      if (params.service) tokenUrl.searchParams.set('service', params.service);
      tokenUrl.searchParams.set('scope', params.scope ?? `repository:${repository}:pull`);
      const answer = await fetch(tokenUrl, { signal });
      const body = answer.ok ? ((await answer.json()) as { token?: string; access_token?: string }) : {};
      const token = body.token ?? body.access_token;
      if (!token) return 'unknown';
      response = await fetch(url, {
        method: 'HEAD',
        headers: { Accept: MANIFESTS, Authorization: `Bearer ${token}` },
        signal,
      });
    }
    if (response.ok) return 'found';
    return response.status === 404 ? 'missing' : 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface ChosenImage {
  image: string;
  warning?: string;
}

/**
 * The image whose distributed and Python match this machine's: `<repository>:<version>-py<X.Y>`,
 * else the release's own tag (another Python) with a warning, else a usage error. A registry
 * that cannot be asked gets the exact tag.
 */
export async function matchingImage(
  python: string | undefined,
  repository = process.env.DCP_IMAGE_REPOSITORY || DEFAULT_IMAGE_REPOSITORY,
): Promise<ChosenImage> {
  let found;
  try {
    found = await findPython(python);
  } catch (error) {
    throw new DcpError('no local Dask to match the cluster image to', {
      hint: `install distributed here (your Client must match the cluster), pass --python, or choose the image: --image ${repository}:<version>-py<python>`,
      cause: error,
    });
  }
  const { distributed, python: version } = await daskVersions(found.executable);
  const exact = `${repository}:${distributed}-py${version}`;
  if ((await lookupImage(exact)) !== 'missing') return { image: exact };
  const release = `${repository}:${distributed}`;
  if ((await lookupImage(release)) === 'found') {
    return {
      image: release,
      warning: `${repository} has no image of distributed ${distributed} for Python ${version}; using ${release}, built for another Python (functions pickled here may not load there: pass --image with one that matches if you have it)`,
    };
  }
  throw usageError(
    `${repository} has no image of distributed ${distributed}`,
    `pass --image with one that has distributed ${distributed} and Python ${version}, or --runtime preinstalled with an --ami that has them`,
  );
}
