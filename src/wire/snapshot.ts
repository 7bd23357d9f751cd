// ProxySnapshot: the wire contract between the control plane and a proxy (JSON, versioned).
//
// Everything a proxy needs is in here, already resolved: the control plane translates Istio
// resources into these plain records, and the proxy compiles them into runtime tables. Nothing
// in this file may depend on where the resources came from (files today, Kubernetes later).

export const WIRE_FORMAT = 1;

export interface ProxySnapshot {
  wire: typeof WIRE_FORMAT;
  /** The control plane's configuration version; grows by one for every change it pushes. */
  version: number;
  proxy: ProxyNode;
  /** Sidecars only: where the local app listens. */
  inbound?: InboundConfig;
  /** Routing for traffic the proxy sends into the mesh (sidecar outbound side, or the edge). */
  outbound: OutboundConfig;
  clusters: ClusterConfig[];
}

/** Who the proxy is: the identity its metrics and (later) certificates carry. */
export interface ProxyNode {
  id: string;
  kind: 'sidecar' | 'edge';
  workload: string;
  namespace: string;
  app: string;
  version: string;
  serviceAccount: string;
  /** SPIFFE ID, `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`. */
  identity: string;
  labels: Record<string, string>;
}

export interface InboundConfig {
  appHost: string;
  appPort: number;
}

export interface OutboundConfig {
  virtualHosts: VirtualHostConfig[];
}

/**
 * Routes for one service port. `domains` are the Host header values that select it, with and
 * without `:port` (e.g. `reviews`, `reviews:9080`, `reviews.default.svc.cluster.local:9080`).
 */
export interface VirtualHostConfig {
  name: string;
  domains: string[];
  routes: RouteConfig[];
}

export type StringMatchConfig = { exact: string } | { prefix: string } | { regex: string };

export interface HeaderMatchConfig {
  /** Lowercase header name. */
  name: string;
  /** Absent means "the header is present". */
  match?: StringMatchConfig;
}

/** One `HTTPMatchRequest`: every field given must match (AND). */
export interface MatchConfig {
  name?: string;
  uri?: StringMatchConfig;
  scheme?: StringMatchConfig;
  method?: StringMatchConfig;
  authority?: StringMatchConfig;
  headers?: HeaderMatchConfig[];
  withoutHeaders?: HeaderMatchConfig[];
  queryParams?: HeaderMatchConfig[];
  ignoreUriCase?: boolean;
  port?: number;
}

export interface RouteConfig {
  /** `<vs namespace>/<vs name>/<route name or index>`: what metrics and logs call the route. */
  name: string;
  /** OR-ed; an empty list matches every request. */
  match: MatchConfig[];
  action: RouteAction;
}

export type RouteAction =
  | { kind: 'route'; destinations: WeightedCluster[]; timeoutMs?: number }
  | { kind: 'directResponse'; status: number; body?: string };

export interface WeightedCluster {
  /** Name of a ClusterConfig in the same snapshot. */
  cluster: string;
  /** Relative weight; Σ over the list is > 0 whenever there is more than one entry. */
  weight: number;
}

export type LbConfig =
  | { simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH' }
  | { consistentHash: ConsistentHashConfig };

export interface ConsistentHashConfig {
  /** Where the hash key comes from. */
  key:
    | { header: string }
    | { cookie: { name: string; path?: string; ttlSeconds?: number } }
    | { sourceIp: true }
    | { queryParameter: string };
  algorithm: { ringHash: { minimumRingSize: number } } | { maglev: { tableSize: number } };
}

/** The service a cluster belongs to, as metrics label it. */
export interface ServiceRef {
  /** FQDN, e.g. `reviews.default.svc.cluster.local` (Istio's `destination_service`). */
  host: string;
  name: string;
  namespace: string;
  port: number;
}

/** Istio's cluster: a (service, port, subset) with its balancing policy and endpoints. */
export interface ClusterConfig {
  /** Istio-style: `outbound|<port>|<subset>|<fqdn>`. */
  name: string;
  service: ServiceRef;
  subset?: string;
  lb: LbConfig;
  endpoints: EndpointConfig[];
}

export interface EndpointConfig {
  host: string;
  port: number;
  /** Relative weight for weighted balancing (default 1). */
  weight: number;
  /** What metrics say about the workload behind the endpoint. */
  workload: string;
  namespace: string;
  app: string;
  version: string;
  identity: string;
  /** True when a Weft sidecar fronts the endpoint (so the peer speaks Weft's metadata). */
  sidecar: boolean;
}

// ---- the stream between proxy and control plane (newline-delimited JSON over HTTP/2) -------

/** First message a proxy sends: who it is and where it listens. */
export interface ProxyHello {
  type: 'hello';
  id: string;
  token: string;
  listeners: { inbound?: string; outbound?: string; admin: string };
  pid: number;
}

export interface ProxyAck {
  type: 'ack';
  version: number;
}

export interface ProxyNack {
  type: 'nack';
  version: number;
  error: string;
}

export type ProxyMessage = ProxyHello | ProxyAck | ProxyNack;
