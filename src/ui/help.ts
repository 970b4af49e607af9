/** Help text pieces, kept out of cli.ts so tests can read them without running the CLI. */

/** The settings keys, for `dcp config --help` (a test keeps this in step with the schema). */
export const SETTINGS_HELP = `  provider        local | aws | gcp | azure | digitalocean   (default local)
  workers         number of workers (default 2)            threads    threads per worker
  networking      public | private (default public)        ingress    [{ports, cidr}], see set ingress
  tls             auto | byo | off (default auto)          tls_dir    folder in the certs gen layout
  image           Docker image for cloud VMs               idle_timeout  e.g. 30m, 1h (default 1h)
  runtime         docker | preinstalled (Dask on the VM image already; default docker)
  tls_min_version 1.2 | 1.3 (default: your Dask config's, else 1.2)   tls_max_version  1.2 | 1.3
  tls_ciphers     an OpenSSL cipher string (TLS 1.2)        require_encryption  true | false (default true)
  aws.            region, vpc, subnet, instance_type, scheduler_instance_type, ami
  gcp.            project, zone, network, subnetwork, machine_type, image, image_family
  azure.          subscription_id, resource_group, location, vnet, subnet, security_group, vm_size
  digitalocean.   region, size, image, vpc, ssh_key (id or fingerprint), egress (nat | public)`;

/** An `Examples:` block for --help. */
export function examples(lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  ${line}`).join('\n')}\n`;
}
