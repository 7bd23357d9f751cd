// Kubernetes Service (apiVersion v1): the ports and selector Weft uses, plus the usual fields so real manifests load.
import type { KubeServicePort, KubeServiceSpec } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { anyMap, bool, enumOf, int, intOrString, listOf, obj, port, str, type Schema } from './schema.ts';
import { labelsMap, stringList } from './common.ts';
import { items, type RuleContext } from './rules.ts';
import { checkServiceName } from './names.ts';

/** A named container port (IANA service name): 1-15 of a-z, 0-9, '-', with a letter, no '--'. */
function checkPortName(name: string): string | undefined {
  if (name.length > 15 || !/^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/.test(name) || !/[a-z]/.test(name) || name.includes('--')) {
    return `invalid port name ${JSON.stringify(name)}: use 1-15 lowercase letters, digits and '-', with at least one letter`;
  }
  return undefined;
}

function checkServicePortName(name: string): string | undefined {
  return name.length <= 63 && /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/.test(name) ? undefined : `invalid port name ${JSON.stringify(name)}: must be a lowercase DNS label`;
}

const servicePort = obj(
  {
    name: str({ rule: checkServicePortName }),
    port: port(),
    targetPort: intOrString(port(), str({ rule: checkPortName })),
    protocol: enumOf(['TCP', 'UDP', 'SCTP']),
    appProtocol: str(),
    nodePort: int({ min: 0, max: 65535 }),
  },
  { required: ['port'] },
);

const spec: Schema<Record<string, unknown>> = obj({
  selector: labelsMap(),
  ports: listOf(servicePort),
  type: enumOf(['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']),
  clusterIP: str(),
  clusterIPs: stringList(),
  externalIPs: stringList(),
  externalName: str(),
  externalTrafficPolicy: enumOf(['Cluster', 'Local']),
  internalTrafficPolicy: enumOf(['Cluster', 'Local']),
  ipFamilies: listOf(enumOf(['IPv4', 'IPv6'])),
  ipFamilyPolicy: enumOf(['SingleStack', 'PreferDualStack', 'RequireDualStack']),
  loadBalancerIP: str(),
  loadBalancerSourceRanges: stringList(),
  loadBalancerClass: str(),
  allocateLoadBalancerNodePorts: bool(),
  healthCheckNodePort: int({ min: 0, max: 65535 }),
  publishNotReadyAddresses: bool(),
  sessionAffinity: enumOf(['None', 'ClientIP']),
  sessionAffinityConfig: anyMap(),
  trafficDistribution: str(),
});

function rules(spec: KubeServiceSpec, ctx: RuleContext): void {
  const ports = spec.ports ?? [];
  const names = new Set<string>();
  const keys = new Set<string>();
  for (const [p, path] of items(ports, 'spec.ports')) {
    // Kubernetes: with more than one port every port needs a (unique) name.
    if (ports.length > 1 && !p.name) ctx.error(joinPath(path, 'name'), 'a Service with several ports must name every port', Codes.REQUIRED);
    if (p.name) {
      if (names.has(p.name)) ctx.error(joinPath(path, 'name'), `duplicate port name ${JSON.stringify(p.name)}`, Codes.DUPLICATE);
      names.add(p.name);
    }
    const key = `${p.port}/${p.protocol ?? 'TCP'}`;
    if (keys.has(key)) ctx.error(joinPath(path, 'port'), `duplicate port ${key}`, Codes.DUPLICATE);
    keys.add(key);
  }
}

/** Kubernetes defaulting: protocol TCP, and targetPort equal to port. */
function finish(spec: KubeServiceSpec): KubeServiceSpec {
  spec.ports = (spec.ports ?? []).map((p: KubeServicePort) => ({ ...p, protocol: p.protocol ?? 'TCP', targetPort: p.targetPort ?? p.port }));
  return spec;
}

export const service: KindDef<KubeServiceSpec> = {
  group: '',
  kind: 'Service',
  versions: ['v1'],
  origin: 'Kubernetes',
  protoNames: false,
  spec,
  nameRule: checkServiceName,
  rules,
  finish,
};
