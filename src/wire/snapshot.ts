// ProxySnapshot: the wire contract between the control plane and a proxy (JSON, versioned).
//
// Everything a proxy needs is in here, already resolved: the control plane translates Istio
// resources into these plain records, and the proxy compiles them into runtime tables. Nothing
// in this file may depend on where the resources came from (files today, Kubernetes later).

import type { CircuitLimitsConfig, FallbackConfig, OutlierConfig } from './resilience.ts';
import type { AuthorizationPolicyConfig, InboundMtlsConfig } from './security.ts';

export type { AuthorizationPolicyConfig, InboundMtlsConfig, MtlsMode } from './security.ts';

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
  /**
   * The mesh's trusted roots (PEM), added by the control plane: the first is the root the CA signs
   * under now, any others are still trusted (a root rotation in progress). Absent without a CA.
   */
  trustBundle?: string[];
}

/** Who the proxy is: the identity its metrics and its workload certificate carry. */
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
  /** How the sidecar speaks to its app: the protocol of the service port that selects the workload. */
  protocol: UpstreamProtocol;
  /** PeerAuthentication for the app's port; absent = PERMISSIVE. */
  mtls?: InboundMtlsConfig;
  /** The AuthorizationPolicies that apply to this workload; absent or empty = allow all. */
  authorization?: AuthorizationPolicyConfig[];
}

/**
 * How a proxy speaks HTTP to an upstream: HTTP/1.1, or HTTP/2 (cleartext with prior knowledge,
 * or negotiated by ALPN when the cluster originates TLS).
 */
export type UpstreamProtocol = 'http1' | 'h2';

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
  | ({ kind: 'route'; destinations: WeightedCluster[] } & RouteBehaviour)
  | ({ kind: 'directResponse'; status: number; body?: string } & Pick<RouteBehaviour, 'headers' | 'fault' | 'cors'>)
  | ({ kind: 'redirect' } & RedirectConfig & Pick<RouteBehaviour, 'headers' | 'cors'>);

/** What a `route` action may do besides choosing a destination (each field absent = off). */
export interface RouteBehaviour {
  /** Whole-request timeout, retries included (Istio's `timeout`); absent = none. */
  timeoutMs?: number;
  /**
   * Weft's streaming timeouts (VirtualService annotations `weft.dev/first-byte-timeout`,
   * `weft.dev/idle-timeout`): from a try going upstream to the first byte of the answer's body
   * (the answer is held until then, so a try that times out can still be retried or fall back);
   * and the longest gap between two chunks of the answer once it has started. Absent = none.
   */
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
  /** Always present on routes: Istio's mesh default applies when the VirtualService sets none. */
  retries?: RetryPolicyConfig;
  fault?: FaultConfig;
  mirrors?: MirrorConfig[];
  rewrite?: RewriteConfig;
  headers?: HeaderOpsConfig;
  cors?: CorsConfig;
}

export interface WeightedCluster {
  /** Name of a ClusterConfig in the same snapshot. */
  cluster: string;
  /** Relative weight; Σ over the list is > 0 whenever there is more than one entry. */
  weight: number;
  /** Destination-level header operations, applied before the route's. */
  headers?: HeaderOpsConfig;
}

export interface RetryPolicyConfig {
  /** Retries after the first try (Istio's `attempts`); 0 disables. */
  attempts: number;
  /** Per try; absent = the route timeout (or none). */
  perTryTimeoutMs?: number;
  /** Envoy retry conditions: `5xx`, `gateway-error`, `reset`, `connect-failure`, `retriable-4xx`, `refused-stream`, `retriable-status-codes`, and gRPC `cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`. */
  retryOn: string[];
  retriableStatusCodes: number[];
  /** Pick another endpoint than those tried before, when there is one (Istio's default). */
  avoidPreviousHosts: boolean;
  /** Fully jittered exponential backoff: base and cap, milliseconds. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface FaultConfig {
  delay?: { fixedDelayMs: number; percent: number };
  abort?: { percent: number } & ({ httpStatus: number } | { grpcStatus: string });
}

export interface MirrorConfig {
  cluster: string;
  /** 0–100; Istio's default is 100. */
  percent: number;
}

export interface RewriteConfig {
  /** Replaces the matched prefix when the route matched by prefix, else the whole path. */
  uri?: string;
  authority?: string;
  /** RE2 pattern and replacement (`\1` groups), applied to the path. */
  uriRegex?: { match: string; rewrite: string };
}

export interface RedirectConfig {
  uri?: string;
  authority?: string;
  port?: number;
  /** `FROM_PROTOCOL_DEFAULT` or `FROM_REQUEST_PORT`. */
  derivePort?: string;
  scheme?: string;
  status: number;
}

export interface HeaderOps {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface HeaderOpsConfig {
  request?: HeaderOps;
  response?: HeaderOps;
}

export interface CorsConfig {
  allowOrigins: StringMatchConfig[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeSeconds?: number;
  allowCredentials?: boolean;
  /** What to do with a preflight whose origin does not match: `FORWARD` or `IGNORE` (Istio's default: forward). */
  unmatchedPreflights: 'FORWARD' | 'IGNORE';
}

export type LbConfig =
  | { simple: 'ROUND_ROBIN' | 'LEAST_REQUEST'; warmup?: WarmupConfig }
  | { simple: 'RANDOM' | 'PASSTHROUGH' }
  | { consistentHash: ConsistentHashConfig };

/**
 * Slow start (Istio's `warmup`, Envoy's `slow_start_config`), for ROUND_ROBIN and LEAST_REQUEST
 * only: for `durationMs` after an endpoint joins the cluster its weight is scaled by
 * `max(minimumPercent / 100, (elapsed / durationMs) ^ (1 / aggression))`.
 */
export interface WarmupConfig {
  durationMs: number;
  /** 0–100; Istio's default is 10. */
  minimumPercent: number;
  /** > 0; 1 ramps linearly (Istio's default). */
  aggression: number;
}

export interface ConsistentHashConfig {
  /** Where the hash key comes from. */
  key:
    | { header: string }
    | { cookie: HashCookieConfig }
    | { sourceIp: true }
    | { queryParameter: string };
  algorithm: { ringHash: { minimumRingSize: number } } | { maglev: { tableSize: number } };
}

/**
 * A cookie that carries the hash key. With `ttlSeconds` present the proxy generates the cookie
 * when the request has none (0 means a session cookie: no Max-Age); without it, a request that
 * lacks the cookie has no hash key.
 */
export interface HashCookieConfig {
  name: string;
  path?: string;
  /** Whole seconds, as Envoy keeps them. */
  ttlSeconds?: number;
  /** Extra Set-Cookie attributes (`SameSite=Lax`, `Secure`), in order. */
  attributes?: Array<{ name: string; value?: string }>;
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
  /** Istio's protocol selection (service port protocol, then `h2UpgradePolicy`). */
  protocol: UpstreamProtocol;
  /**
   * `connectionPool.http.useClientProtocol` (absent = false): each request goes to the endpoint
   * in the protocol it reached the proxy in (HTTP/2 → `h2`, HTTP/1.x → `http1`), whatever
   * `protocol` says, as Envoy's `use_downstream_protocol_config`; `protocol` then only sizes the
   * circuit limits and pool settings.
   */
  useClientProtocol?: boolean;
  /** DestinationRule `tls` (see ClusterTlsConfig); absent = auto mTLS. */
  tls?: ClusterTlsConfig;
  /** `connectionPool` (and `retryBudget`), defaults filled in; absent = Istio's defaults (no limits). */
  limits?: CircuitLimitsConfig;
  /** `outlierDetection`, defaults filled in; absent = no outlier detection (Istio's default). */
  outlierDetection?: OutlierConfig;
  /** The FallbackPolicy protecting this cluster, if any. */
  fallback?: FallbackConfig;
  endpoints: EndpointConfig[];
}

/**
 * DestinationRule `tls` (Istio's ClientTLSSettings). `SIMPLE`: the proxy originates TLS to
 * endpoints outside the mesh, offering ALPN `h2` only for an HTTP/2 cluster, `h2` and `http/1.1`
 * otherwise, and speaks what the server picks (the other fields apply to it). `ISTIO_MUTUAL`: mTLS
 * with the workload certificate to every endpoint. `DISABLE`: plaintext, even to sidecars. Absent:
 * Istio's auto mTLS — mTLS to endpoints a Weft sidecar fronts, plaintext to the others.
 */
export interface ClusterTlsConfig {
  mode: 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL' | 'DISABLE';
  /** MUTUAL: PEM files of the client certificate and its key the proxy presents, read by the proxy. */
  clientCertificate?: string;
  privateKey?: string;
  /** Server name to send; absent = the request's host (Envoy's auto SNI). */
  sni?: string;
  /** Path of a PEM file of trusted CAs, read by the proxy; absent = the system's trusted roots. */
  caCertificates?: string;
  /** The certificate must carry one of these SANs; absent = it must match the server name. */
  subjectAltNames?: string[];
  /** Skip certificate and name verification altogether. */
  insecureSkipVerify?: boolean;
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
  /** The SPIFFE ID the endpoint's certificate must carry (checked when the connection is mTLS). */
  identity: string;
  /** True when a Weft sidecar fronts the endpoint: it speaks Weft's metadata and, by default, mTLS. */
  sidecar: boolean;
  /** `false`: the sidecar's PeerAuthentication is DISABLE, so auto mTLS sends plaintext (Istio infers the same). */
  mtls?: false;
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

/**
 * An endpoint-only update, as Envoy's EDS: new endpoint lists for some clusters of the snapshot
 * the proxy was last sent, everything else unchanged. The control plane sends it instead of a
 * whole snapshot when nothing but endpoints changed (a WorkloadEntry edited; a replica started,
 * stopped, ready or not), so a change at mesh scale costs what changed, not the mesh. It carries
 * a version of the same sequence as snapshots and is ACKed or NACKed the same way.
 */
export interface EndpointsUpdate {
  type: 'endpoints';
  wire: typeof WIRE_FORMAT;
  version: number;
  /** The version it applies to: a proxy running any other refuses it (NACK), and gets a whole snapshot. */
  base: number;
  clusters: ClusterEndpoints[];
}

export interface ClusterEndpoints {
  /** A cluster of the snapshot, by `ClusterConfig.name`. */
  name: string;
  /** Its whole new endpoint list. */
  endpoints: EndpointConfig[];
}

/**
 * A configuration delta, as Envoy's incremental xDS: the virtual hosts and clusters that changed
 * since the version the proxy runs, and those that went away; everything else (the proxy, inbound
 * and trust bundle included) is unchanged. The control plane sends it instead of a whole snapshot
 * when a proxy holds the version it was computed against, so a routing change at mesh scale costs
 * what changed, not the mesh. Applied, it gives exactly the snapshot the control plane translated.
 */
export interface ConfigDelta {
  type: 'delta';
  wire: typeof WIRE_FORMAT;
  version: number;
  /** The version it applies to: a proxy running any other refuses it (NACK), and gets a whole snapshot. */
  base: number;
  /** New or changed virtual hosts, whole; they replace those of the same name. */
  virtualHosts: VirtualHostConfig[];
  removedVirtualHosts: string[];
  /**
   * Every virtual host's name in order (the first virtual host to claim a domain gets it), when
   * the order is not the kept hosts in their places followed by the new ones; absent, it is that.
   */
  virtualHostOrder?: string[];
  /** New or changed clusters, whole; a new one goes after the others. */
  clusters: ClusterConfig[];
  removedClusters: string[];
}

/** What the control plane sends down the stream. */
export type ControlMessage = ProxySnapshot | EndpointsUpdate | ConfigDelta;
