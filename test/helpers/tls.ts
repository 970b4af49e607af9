/** Drives tls_handshake.py: a real mutual-TLS exchange with contexts built by distributed. */
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { python } from './dask.js';

const SCRIPT = fileURLToPath(new URL('./tls_handshake.py', import.meta.url));

export interface Peer {
  role: 'scheduler' | 'worker' | 'client';
  ca: string;
  cert: string | null;
  key: string | null;
}

export interface Handshake {
  ok: boolean;
  server_error: string | null;
  client_error: string | null;
}

export async function handshake(server: Peer, client: Peer, strict: boolean): Promise<Handshake> {
  const result = await execa(python(), [SCRIPT, JSON.stringify({ server, client, strict })], {
    reject: false,
    timeout: 60_000,
  });
  if (result.exitCode !== 0) throw new Error(`tls_handshake.py failed:\n${result.stderr}`);
  return JSON.parse(result.stdout) as Handshake;
}
