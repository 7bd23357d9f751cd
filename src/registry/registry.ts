// Registry: the services, workload instances and endpoints of the mesh, derived from resources.
//
// Pure: built from the resources plus what the supervisor knows about running instances (their
// sidecar's inbound address and whether the app is up). Translation reads only this.

import type {
  KubeServiceSpec,
  Resource,
  ServiceEntrySpec,
  WorkloadEntrySpec,
} from '../api/types.ts';
import { fqdn } from '../api/hosts.ts';

export interface ServicePortInfo {
  name: string;
  port: number;
  /** Port (or port name) on the workload; undefined means "same as port". */
  targetPort?: number | string;
  protocol: string;
}

export interface ServiceInfo {
  /** FQDN for Kubernetes services (`name.ns.svc.cluster.local`); the literal host for ServiceEntries. */
  host: string;
  name: string;
  namespace: string;
  ports: ServicePortInfo[];
  /** Kubernetes Service selector; ServiceEntry workloadSelector. */
  selector?: Record<string, string>;
  /** Static endpoints a ServiceEntry lists. */
  staticEndpoints: EndpointInfo[];
  origin: 'Service' | 'ServiceEntry';
}

/** A running replica of a Workload, as the supervisor reports it. */
export interface WorkloadInstance {
  /** Proxy id, e.g. `default/sentiment-v1-0`. */
  id: string;
  workload: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** The sidecar's inbound listener, once the proxy has said where it listens. */
  inbound?: { host: string; port: number };
  /** True while the app accepts connections. */
  ready: boolean;
}

/** A place traffic can be sent, with what subsets and metrics need to know about it. */
export interface EndpointInfo {
  host: string;
  /** Port per service port name, or one port for every service port. */
  ports: Record<string, number> | number;
  labels: Record<string, string>;
  weight: number;
  workload: string;
  namespace: string;
  serviceAccount: string;
  sidecar: boolean;
}

export interface Registry {
  services: Map<string, ServiceInfo>;
  /** Endpoints of a service, before subset filtering. */
  endpoints(service: ServiceInfo): EndpointInfo[];
}

export function buildRegistry(resources: readonly Resource[], instances: readonly WorkloadInstance[]): Registry {
  const services = new Map<string, ServiceInfo>();
  const workloadEntries: EndpointInfo[] = [];

  for (const r of resources) {
    if (r.kind === 'Service' && r.apiVersion === 'v1') {
      const spec = r.spec as KubeServiceSpec;
      const host = fqdn(r.metadata.name, r.metadata.namespace);
      services.set(host, {
        host,
        name: r.metadata.name,
        namespace: r.metadata.namespace,
        ports: (spec.ports ?? []).map((p) => ({
          name: p.name ?? `port-${p.port}`,
          port: p.port,
          targetPort: p.targetPort,
          protocol: p.appProtocol ?? p.protocol ?? 'TCP',
        })),
        selector: spec.selector,
        staticEndpoints: [],
        origin: 'Service',
      });
    } else if (r.kind === 'ServiceEntry') {
      const spec = r.spec as ServiceEntrySpec;
      const staticEndpoints = (spec.endpoints ?? []).map((e) => entryEndpoint(e, r.metadata.name, r.metadata.namespace));
      for (const h of spec.hosts) {
        if (services.has(h)) continue;
        services.set(h, {
          host: h,
          name: h,
          namespace: r.metadata.namespace,
          ports: (spec.ports ?? []).map((p) => ({
            name: p.name,
            port: p.number,
            targetPort: p.targetPort,
            protocol: p.protocol ?? 'TCP',
          })),
          selector: spec.workloadSelector?.labels,
          // DNS without endpoints dials the host by name. NONE (Istio's default) means "the
          // address the caller asked for": a caller in this mesh asks by name through its
          // sidecar, so that is the same dial. A wildcard host has no one name to dial.
          staticEndpoints:
            staticEndpoints.length > 0 || h.startsWith('*') || spec.resolution === 'STATIC'
              ? staticEndpoints
              : [dnsEndpoint(h, r.metadata.namespace)],
          origin: 'ServiceEntry',
        });
      }
    } else if (r.kind === 'WorkloadEntry') {
      workloadEntries.push(entryEndpoint(r.spec as WorkloadEntrySpec, r.metadata.name, r.metadata.namespace));
    }
  }

  const instanceEndpoints: EndpointInfo[] = instances
    .filter((i) => i.ready && i.inbound)
    .map((i) => ({
      host: i.inbound!.host,
      ports: i.inbound!.port,
      labels: i.labels,
      weight: 1,
      workload: i.workload,
      namespace: i.namespace,
      serviceAccount: i.serviceAccount,
      sidecar: true,
    }));

  // Selector matching only looks at endpoints of the service's namespace, and each service's
  // endpoints are worked out once per registry, however many clusters and proxies ask.
  const byNamespace = new Map<string, EndpointInfo[]>();
  for (const e of [...instanceEndpoints, ...workloadEntries]) {
    const list = byNamespace.get(e.namespace);
    if (list) list.push(e);
    else byNamespace.set(e.namespace, [e]);
  }
  const cache = new Map<ServiceInfo, EndpointInfo[]>();
  return {
    services,
    endpoints(service) {
      let out = cache.get(service);
      if (!out) {
        const selected = service.selector
          ? (byNamespace.get(service.namespace) ?? []).filter((e) => labelsMatch(service.selector!, e.labels))
          : [];
        out = [...service.staticEndpoints, ...selected];
        cache.set(service, out);
      }
      return out;
    },
  };
}

export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

function entryEndpoint(e: WorkloadEntrySpec, name: string, namespace: string): EndpointInfo {
  return {
    host: e.address ?? '',
    ports: e.ports ?? {},
    labels: e.labels ?? {},
    weight: e.weight ?? 1,
    workload: e.labels?.app ?? name,
    namespace,
    serviceAccount: e.serviceAccount ?? 'default',
    sidecar: false,
  };
}

/** DNS resolution with no endpoints listed: the host itself is the endpoint. */
function dnsEndpoint(host: string, namespace: string): EndpointInfo {
  return { host, ports: {}, labels: {}, weight: 1, workload: host, namespace, serviceAccount: 'default', sidecar: false };
}

/** The port to dial on an endpoint for a given service port. */
export function endpointPort(e: EndpointInfo, sp: ServicePortInfo): number {
  if (typeof e.ports === 'number') return e.ports;
  const named = e.ports[sp.name];
  if (named !== undefined) return named;
  if (typeof sp.targetPort === 'number') return sp.targetPort;
  if (typeof sp.targetPort === 'string' && e.ports[sp.targetPort] !== undefined) return e.ports[sp.targetPort];
  return sp.port;
}
