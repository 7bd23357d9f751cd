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

/** The kinds a registry is built from (besides workload instances). */
export const REGISTRY_KINDS: ReadonlySet<string> = new Set(['Service', 'ServiceEntry', 'WorkloadEntry']);

const NONE: readonly EndpointInfo[] = [];

/** The endpoint records of the service `host` (none for an unknown host): what its clusters' endpoints are made from. */
export function endpointRecords(registry: Registry, host: string): readonly EndpointInfo[] {
  const service = registry.services.get(host);
  return service ? registry.endpoints(service) : NONE;
}

/**
 * Whether two lists hold the very same records (objects, by identity). A registry keeps one
 * endpoint record per unchanged source (below), so across registries this tells whether a
 * service's endpoints changed; the control plane asks it of workload instances too.
 */
export function sameRecords<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
      const records = cached(fromServiceEntry, r, () => ({
        listed: (spec.endpoints ?? []).map((e) => entryEndpoint(e, r.metadata.name, r.metadata.namespace)),
        byHost: new Map<string, EndpointInfo[]>(),
      }));
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
          staticEndpoints: cached(records.byHost, h, () =>
            records.listed.length > 0 || h.startsWith('*') || spec.resolution === 'STATIC'
              ? records.listed
              : [dnsEndpoint(h, r.metadata.namespace)],
          ),
          origin: 'ServiceEntry',
        });
      }
    } else if (r.kind === 'WorkloadEntry') {
      workloadEntries.push(cached(fromEntry, r, () => entryEndpoint(r.spec as WorkloadEntrySpec, r.metadata.name, r.metadata.namespace)));
    }
  }

  const instanceEndpoints: EndpointInfo[] = instances
    .filter((i) => i.ready && i.inbound)
    .map((i) =>
      cached(fromInstance, i, () => ({
        host: i.inbound!.host,
        ports: i.inbound!.port,
        labels: i.labels,
        weight: 1,
        workload: i.workload,
        namespace: i.namespace,
        serviceAccount: i.serviceAccount,
        sidecar: true,
      })),
    );

  // Selector matching only looks at endpoints of the service's namespace that carry one of the
  // selector's labels (an index by namespace and label), and each service's endpoints are worked
  // out once per registry, however many clusters and proxies ask: with 1000 services × 10
  // endpoints a scan of the namespace per service was a third of the control plane's time.
  const byNamespace = new Map<string, EndpointInfo[]>();
  const byLabel = new Map<string, EndpointInfo[]>();
  for (const e of [...instanceEndpoints, ...workloadEntries]) {
    push(byNamespace, e.namespace, e);
    for (const k in e.labels) push(byLabel, labelKey(e.namespace, k, e.labels[k]!), e);
  }
  const cache = new Map<ServiceInfo, EndpointInfo[]>();
  const candidates = (namespace: string, selector: Record<string, string>): EndpointInfo[] => {
    let fewest: EndpointInfo[] | undefined;
    for (const k in selector) {
      const list = byLabel.get(labelKey(namespace, k, selector[k]!)) ?? [];
      if (!fewest || list.length < fewest.length) fewest = list;
    }
    // No label to look up: the selector matches every endpoint of the namespace.
    return fewest ?? byNamespace.get(namespace) ?? [];
  };
  return {
    services,
    endpoints(service) {
      let out = cache.get(service);
      if (!out) {
        const selected = service.selector ? candidates(service.namespace, service.selector).filter((e) => labelsMatch(service.selector!, e.labels)) : [];
        out = [...service.staticEndpoints, ...selected];
        cache.set(service, out);
      }
      return out;
    },
  };
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Namespace, label name and value as one map key (NUL cannot occur in any of them). */
function labelKey(namespace: string, name: string, value: string): string {
  return `${namespace}\0${name}\0${value}`;
}

export function labelsMatch(selector: Record<string, string>, labels: Record<string, string>): boolean {
  for (const k in selector) if (labels[k] !== selector[k]) return false;
  return true;
}

/**
 * Endpoint records kept per source object: an unchanged WorkloadEntry, ServiceEntry or instance
 * gives the very same records in every registry built from it, so a service whose endpoints did
 * not change has the same records, and whoever compares two registries can tell that by identity
 * (control/incremental.ts). Records are never modified.
 */
const fromEntry = new WeakMap<Resource, EndpointInfo>();
/** A ServiceEntry's listed endpoints, and each host's static endpoints (those, or the host itself by DNS). */
const fromServiceEntry = new WeakMap<Resource, { listed: EndpointInfo[]; byHost: Map<string, EndpointInfo[]> }>();
const fromInstance = new WeakMap<WorkloadInstance, EndpointInfo>();

function cached<K, V>(cache: { get(key: K): V | undefined; set(key: K, value: V): unknown }, key: K, make: () => V): V {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, (v = make()));
  return v;
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
