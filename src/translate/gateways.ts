// Gateways: which Gateway resources bind to the edge, and which VirtualServices a proxy takes.

import type { HTTPMatchRequest, Resource, VirtualServiceSpec } from '../api/types.ts';
import { fqdn, hostCoveredBy } from '../api/hosts.ts';
import { EDGE_LABELS } from '../api/edge.ts';
import { labelsMatch } from '../registry/registry.ts';
import type { ProxyNode } from '../wire/snapshot.ts';
import { spiffe } from './identity.ts';

/**
 * The edge as the supervisor runs it. It is Weft's ingress gateway, so it carries the label
 * Istio's default ingress gateway has (`istio: ingressgateway`) and Gateways selecting that bind
 * to it. It routes short names as a sidecar in `default` would.
 */
export function edgeProxyNode(): ProxyNode {
  return {
    id: 'weft-system/edge',
    kind: 'edge',
    workload: 'weft-edge',
    namespace: 'default',
    app: 'weft-edge',
    version: 'unknown',
    serviceAccount: 'weft-edge',
    identity: spiffe('weft-system', 'weft-edge'),
    labels: { ...EDGE_LABELS },
  };
}

/** Protocols of Gateway servers the edge serves (TLS termination comes with the security work). */
const HTTP_PROTOCOLS = new Set(['HTTP', 'HTTP2', 'GRPC']);

interface GatewaySpec {
  selector?: Record<string, string>;
  servers?: Array<{ port?: { protocol?: string }; hosts?: string[] }>;
}

export interface BoundGateways {
  /** `namespace/name` of each Gateway bound to this proxy. */
  names: ReadonlySet<string>;
  /** Host patterns its HTTP servers accept, with the namespace part stripped. */
  hosts: readonly string[];
}

/** Gateways whose selector matches the proxy's labels (only the edge is a gateway in Weft). */
export function boundGateways(resources: readonly Resource[], proxy: ProxyNode): BoundGateways {
  const names = new Set<string>();
  const hosts: string[] = [];
  if (proxy.kind !== 'edge') return { names, hosts };
  for (const r of resources) {
    if (r.kind !== 'Gateway') continue;
    const spec = r.spec as GatewaySpec;
    if (!labelsMatch(spec.selector ?? {}, proxy.labels)) continue;
    const servers = (spec.servers ?? []).filter((s) => HTTP_PROTOCOLS.has((s.port?.protocol ?? '').toUpperCase()));
    if (servers.length === 0) continue;
    names.add(`${r.metadata.namespace}/${r.metadata.name}`);
    for (const s of servers) for (const h of s.hosts ?? []) hosts.push(h.includes('/') ? h.slice(h.indexOf('/') + 1) : h);
  }
  return { names, hosts };
}

/** `gateways: [name]` resolves in the VirtualService's namespace; `ns/name` as written. */
function gatewayKey(name: string, namespace: string): string {
  return name.includes('/') ? name : `${namespace}/${name}`;
}

/**
 * Does a VirtualService apply to this proxy, and through which door? Sidecars take mesh rules
 * (no `gateways`, or `mesh` listed). The edge takes mesh rules too — it routes as a sidecar would
 * — and the rules bound to its Gateways, which win over mesh rules for the same host.
 */
export function virtualServiceBinding(vs: Resource<VirtualServiceSpec>, proxy: ProxyNode, bound: BoundGateways): 'mesh' | 'gateway' | undefined {
  const gateways = vs.spec.gateways ?? [];
  if (proxy.kind === 'edge' && gateways.some((g) => bound.names.has(gatewayKey(g, vs.metadata.namespace)))) return 'gateway';
  if (gateways.length === 0 || gateways.includes('mesh')) return 'mesh';
  return undefined;
}

/** A VirtualService host is served at a gateway when one of its HTTP servers' hosts covers it. */
export function gatewayServesHost(host: string, vsNamespace: string, bound: BoundGateways): boolean {
  return bound.hosts.some((h) => hostCoveredBy(host, h) || hostCoveredBy(fqdn(host, vsNamespace), h));
}

/** A match item's own `gateways` narrow where it applies; `mesh` means the sidecars (and the edge). */
export function matchGatewaysApply(m: HTTPMatchRequest, vsNamespace: string, bound: BoundGateways): boolean {
  if (!m.gateways || m.gateways.length === 0) return true;
  return m.gateways.some((g) => g === 'mesh' || bound.names.has(gatewayKey(g, vsNamespace)));
}
