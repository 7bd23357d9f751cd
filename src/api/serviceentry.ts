// ServiceEntry (networking.istio.io v1, v1beta1, v1alpha3): schema and Istio's validation rules.
import type { ServiceEntrySpec } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { enumOf, listOf, mapOf, obj, port, str, type Schema } from './schema.ts';
import { stringList } from './common.ts';
import { checkExportTo, checkSelectorLabels, items, type RuleContext } from './rules.ts';
import { checkFQDN, checkWildcardDomain, isPartialWildcard } from './names.ts';
import { checkIPSubnet } from './net.ts';
import { checkPortName, checkWorkloadEntry, workloadEntrySchema } from './workloadentry.ts';

const spec: Schema<Record<string, unknown>> = obj(
  {
    hosts: listOf(str(), { minItems: 1, maxItems: 256 }),
    addresses: listOf(str({ maxLength: 64 }), { maxItems: 256 }),
    ports: listOf(
      obj({ number: port(), protocol: str({ maxLength: 256 }), name: str({ maxLength: 256 }), targetPort: port() }, { required: ['number', 'name'] }),
      { maxItems: 256 },
    ),
    location: enumOf(['MESH_EXTERNAL', 'MESH_INTERNAL']),
    resolution: enumOf(['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN', 'DYNAMIC_DNS']),
    endpoints: listOf(workloadEntrySchema, { maxItems: 4096 }),
    workloadSelector: obj({ labels: mapOf(str({ maxLength: 63 })) }),
    exportTo: stringList(),
    subjectAltNames: stringList(),
  },
  { required: ['hosts'] },
);

// Istio's protocol names (matched case-insensitively); an empty protocol means "sniff it".
const PROTOCOLS = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);
const HTTP_PROTOCOLS = new Set(['http', 'http2', 'http_proxy', 'grpc', 'grpc-web']);
const TLS_PROTOCOLS = new Set(['https', 'tls']);

export function checkProtocol(protocol: string): string | undefined {
  return protocol === '' || PROTOCOLS.has(protocol.toLowerCase()) ? undefined : `unsupported protocol: ${protocol}`;
}

function rules(se: ServiceEntrySpec, ctx: RuleContext): void {
  const resolution = se.resolution ?? 'NONE';
  const hosts = se.hosts ?? [];
  const ports = se.ports ?? [];

  if (se.workloadSelector) checkSelectorLabels(ctx, 'spec.workloadSelector.labels', se.workloadSelector.labels ?? {}, 'this ServiceEntry');
  if (se.workloadSelector && se.endpoints) {
    ctx.error('spec.endpoints', 'only one of workloadSelector or endpoints can be set', Codes.CONFLICT);
  }

  for (const [host, p] of items(hosts, 'spec.hosts')) {
    if (host === '*') {
      ctx.error(p, 'hostname cannot be wildcard "*"');
      continue;
    }
    const problem = checkWildcardDomain(host);
    if (problem) ctx.error(p, problem);
    else if (resolution !== 'DYNAMIC_DNS' && isPartialWildcard(host)) ctx.warn(p, Codes.SUSPICIOUS, `partial wildcard ${JSON.stringify(host)} not allowed`);
  }

  for (const [address, p] of items(se.addresses, 'spec.addresses')) {
    const problem = checkIPSubnet(address);
    if (problem) ctx.error(p, problem);
    if (address.includes('/')) {
      if (resolution !== 'NONE' && resolution !== 'STATIC') ctx.error(p, 'CIDR addresses are allowed only for NONE/STATIC resolution types', Codes.CONFLICT);
    }
  }

  const portNames = new Set<string>();
  const portNumbers = new Set<number>();
  for (const [sp, p] of items(ports, 'spec.ports')) {
    if (sp.name !== undefined) {
      if (portNames.has(sp.name)) ctx.error(joinPath(p, 'name'), `duplicate value: port name ${JSON.stringify(sp.name)} is already defined`, Codes.DUPLICATE);
      portNames.add(sp.name);
      const problem = checkPortName(sp.name);
      if (problem) ctx.error(joinPath(p, 'name'), problem);
    }
    if (sp.number !== undefined) {
      if (portNumbers.has(sp.number)) ctx.error(joinPath(p, 'number'), `port number cannot be duplicated: ${sp.number} is already defined`, Codes.DUPLICATE);
      portNumbers.add(sp.number);
    }
    if (sp.protocol !== undefined) {
      const problem = checkProtocol(sp.protocol);
      if (problem) ctx.error(joinPath(p, 'protocol'), problem);
    }
  }

  const endpoints = se.endpoints ?? [];
  switch (resolution) {
    case 'NONE':
      if (se.endpoints) ctx.error('spec.endpoints', 'NONE mode cannot set endpoints (resolution defaults to NONE: set STATIC or DNS)', Codes.CONFLICT);
      if (se.workloadSelector) ctx.warn('spec.workloadSelector', Codes.SUSPICIOUS, 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      for (const [ep, p] of items(endpoints, 'spec.endpoints')) checkWorkloadEntry(ctx, p, ep, { servicePorts: portNames, allowFQDN: false });
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      if (endpoints.length === 0) {
        for (const [host, p] of items(hosts, 'spec.hosts')) {
          const problem = checkFQDN(host);
          if (problem) {
            ctx.error(p, `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}: ${problem}`);
            break;
          }
        }
      }
      if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) {
        ctx.error('spec.endpoints', 'DNS_ROUND_ROBIN mode cannot have multiple endpoints');
      }
      for (const [ep, p] of items(endpoints, 'spec.endpoints')) checkWorkloadEntry(ctx, p, ep, { servicePorts: portNames, allowFQDN: true });
      break;
    case 'DYNAMIC_DNS':
      for (const [host, p] of items(hosts, 'spec.hosts')) {
        if (!host.startsWith('*')) ctx.error(p, 'host must be wildcarded for resolution mode DYNAMIC_DNS');
      }
      if (se.addresses?.length) ctx.error('spec.addresses', 'addresses cannot be set for resolution type DYNAMIC_DNS', Codes.CONFLICT);
      if (se.endpoints?.length) ctx.error('spec.endpoints', 'endpoints cannot be set for resolution type DYNAMIC_DNS', Codes.CONFLICT);
      for (const [sp, p] of items(ports, 'spec.ports')) {
        const proto = (sp.protocol ?? '').toLowerCase();
        if (!['http', 'tls', 'grpc', 'http2'].includes(proto)) ctx.error(joinPath(p, 'protocol'), 'only HTTP, TLS, GRPC and HTTP2 protocols are supported for resolution type DYNAMIC_DNS');
      }
      if (!se.location) ctx.error('spec.location', 'location must be MESH_EXTERNAL or MESH_INTERNAL for resolution type DYNAMIC_DNS', Codes.REQUIRED);
      break;
  }

  // With several hosts and no resolution to tell them apart, only HTTP (Host header) and TLS
  // (SNI) ports can say which host a connection is for.
  if (resolution !== 'NONE' && hosts.length > 1) {
    for (const [sp, p] of items(ports, 'spec.ports')) {
      const proto = (sp.protocol ?? '').toLowerCase();
      if (!HTTP_PROTOCOLS.has(proto) && !TLS_PROTOCOLS.has(proto)) {
        ctx.error(joinPath(p, 'protocol'), 'multiple hosts provided with non-HTTP, non-TLS ports');
        break;
      }
    }
  }
  checkExportTo(ctx, 'spec.exportTo', se.exportTo, { serviceEntry: true });
}

export const serviceEntry: KindDef<ServiceEntrySpec> = {
  group: 'networking.istio.io',
  kind: 'ServiceEntry',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  origin: 'Istio',
  protoNames: true,
  spec,
  specRequired: true,
  rules,
};
