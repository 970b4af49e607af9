/**
 * Where a cluster goes in AWS and who may reach it: the VPC and subnet (the ones chosen, else the
 * default VPC), the Ubuntu LTS image for the instance type's architecture, and the security
 * group's rules: the cluster's own members may talk freely, and the ingress rules open the
 * scheduler's ports, to nobody else.
 */
import type { IpPermission } from '@aws-sdk/client-ec2';
import ipaddr from 'ipaddr.js';
import type { IngressRule } from '../../config/ingress.js';
import type { LiveRule } from '../../cluster/doctor.js';
import { DcpError, usageError } from '../../errors.js';
import { call, type Ec2 } from './ec2.js';

export interface Placement {
  vpcId: string;
  vpcCidr: string;
  subnetId: string;
  zone: string;
}

/** The subnet given, else one in the VPC given, else one in the region's default VPC. */
export async function resolvePlacement(
  ec2: Ec2,
  vpc: string | undefined,
  subnet: string | undefined,
  signal: AbortSignal,
): Promise<Placement> {
  const options = { abortSignal: signal };
  let vpcId = vpc;
  if (!vpcId && !subnet) {
    const { Vpcs = [] } = await call('DescribeVpcs', () =>
      ec2.api.describeVpcs({ Filters: [{ Name: 'isDefault', Values: ['true'] }] }, options),
    );
    vpcId = Vpcs[0]?.VpcId;
    if (!vpcId)
      throw usageError(
        `${ec2.region} has no default VPC`,
        'pass --vpc and --subnet (aws ec2 describe-subnets lists them), or save them: dcp config set aws.subnet ...',
      );
  }
  const { Subnets = [] } = await call('DescribeSubnets', () =>
    ec2.api.describeSubnets(
      subnet ? { SubnetIds: [subnet] } : { Filters: [{ Name: 'vpc-id', Values: [vpcId!] }] },
      options,
    ),
  );
  const available = Subnets.filter((s) => s.State === 'available' && (s.AvailableIpAddressCount ?? 1) > 0);
  if (subnet && vpcId && Subnets[0] && Subnets[0].VpcId !== vpcId) {
    throw usageError(
      `subnet ${subnet} is in ${Subnets[0].VpcId}, not in ${vpcId}`,
      'pass a subnet of that VPC, or drop --vpc',
    );
  }
  // The default subnets first (they map public IPs), then the roomiest.
  const chosen = available.sort(
    (a, b) =>
      Number(b.DefaultForAz ?? false) - Number(a.DefaultForAz ?? false) ||
      (b.AvailableIpAddressCount ?? 0) - (a.AvailableIpAddressCount ?? 0),
  )[0];
  if (!chosen)
    throw usageError(
      subnet ? `subnet ${subnet} is not available` : `VPC ${vpcId} has no available subnet`,
      'pass another --subnet',
    );
  const { Vpcs = [] } = await call('DescribeVpcs', () =>
    ec2.api.describeVpcs({ VpcIds: [chosen.VpcId!] }, options),
  );
  return {
    vpcId: chosen.VpcId!,
    vpcCidr: Vpcs[0]?.CidrBlock ?? chosen.CidrBlock!,
    subnetId: chosen.SubnetId!,
    zone: chosen.AvailabilityZone ?? '',
  };
}

/** Graviton families (m7g, c6gn, t4g, a1, ...) run arm64; the rest x86_64. */
export function architecture(instanceType: string): 'arm64' | 'x86_64' {
  return /^(a1|[a-z]+\d+g[a-z]*)\./.test(instanceType) ? 'arm64' : 'x86_64';
}

const CANONICAL = '099720109477';

/** The newest Ubuntu 24.04 LTS server image from Canonical for this architecture. */
export async function ubuntuImage(ec2: Ec2, arch: 'arm64' | 'x86_64', signal: AbortSignal): Promise<string> {
  const { Images = [] } = await call('DescribeImages', () =>
    ec2.api.describeImages(
      {
        Owners: [CANONICAL],
        Filters: [
          {
            Name: 'name',
            Values: [`ubuntu/images/*/ubuntu-noble-24.04-${arch === 'arm64' ? 'arm64' : 'amd64'}-server-*`],
          },
          { Name: 'architecture', Values: [arch] },
          { Name: 'state', Values: ['available'] },
        ],
      },
      { abortSignal: signal },
    ),
  );
  const newest = Images.filter((image) => image.ImageId).sort((a, b) =>
    (b.CreationDate ?? '').localeCompare(a.CreationDate ?? ''),
  )[0];
  if (!newest)
    throw new DcpError(`no Ubuntu 24.04 image for ${arch} found in ${ec2.region}`, {
      hint: 'pass one with --ami',
    });
  return newest.ImageId!;
}

/**
 * A rule as EC2 has it, as who reaches which ports: one per CIDR. Rules naming security groups
 * (the members' own) let in no address from outside, and are left out.
 */
export function liveRules(permission: IpPermission): LiveRule[] {
  const ports: number[] | 'all' =
    permission.IpProtocol === '-1' || permission.FromPort === undefined
      ? 'all'
      : permission.IpProtocol === 'tcp'
        ? Array.from(
            {
              length: Math.min((permission.ToPort ?? permission.FromPort) - permission.FromPort + 1, 65_536),
            },
            (_, i) => permission.FromPort! + i,
          )
        : 'all';
  return [
    ...(permission.IpRanges ?? []).map((range) => range.CidrIp),
    ...(permission.Ipv6Ranges ?? []).map((range) => range.CidrIpv6),
  ].flatMap((cidr) => (cidr ? [{ cidr, ports }] : []));
}

/**
 * The security group's rules: all traffic among its own members (scheduler ↔ workers, workers ↔
 * workers), and each ingress rule's ports over TCP from its network.
 */
export function permissions(groupId: string, rules: IngressRule[]): IpPermission[] {
  const members: IpPermission = {
    IpProtocol: '-1',
    UserIdGroupPairs: [{ GroupId: groupId, Description: 'members of this Dask cluster' }],
  };
  const ports = new Map<number, IngressRule[]>();
  for (const rule of rules)
    for (const port of rule.ports) ports.set(port, [...(ports.get(port) ?? []), rule]);
  const opened = [...ports.entries()].map(([port, from]): IpPermission => {
    const v6 = from.filter((rule) => ipaddr.parseCIDR(rule.cidr)[0].kind() === 'ipv6');
    const v4 = from.filter((rule) => !v6.includes(rule));
    const description = port === 8786 ? 'Dask scheduler' : port === 8787 ? 'Dask dashboard' : 'dcp ingress';
    return {
      IpProtocol: 'tcp',
      FromPort: port,
      ToPort: port,
      ...(v4.length ? { IpRanges: v4.map((rule) => ({ CidrIp: rule.cidr, Description: description })) } : {}),
      ...(v6.length
        ? { Ipv6Ranges: v6.map((rule) => ({ CidrIpv6: rule.cidr, Description: description })) }
        : {}),
    };
  });
  return [members, ...opened];
}
