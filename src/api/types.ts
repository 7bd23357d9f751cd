// Typed resources and diagnostics: what the api/ layer hands to the rest of the control plane.

/** Where a node sits in a mesh file (1-based line and column). */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

export type Severity = 'error' | 'warning';

/**
 * One finding about the configuration. Printed as `file:line:col: severity CODE: message`;
 * `path` names the field (e.g. `spec.http[0].route[1].weight`) and is part of the message.
 */
export interface Diagnostic extends SourcePos {
  severity: Severity;
  code: string;
  message: string;
  path: string;
}

export interface ObjectMeta {
  name: string;
  /** Defaults to "default" when the document has none. */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** A parsed, validated document. `spec` is typed by kind (see the *Spec interfaces below). */
export interface Resource<S = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: S;
  source: SourcePos;
  /** Position of any field path in the document, for diagnostics found after parsing. */
  posOf(path: string): SourcePos;
}

export interface LoadResult {
  /**
   * The documents that validated without errors — what Weft would apply — in file order. Specs
   * are normalised: camelCase field names (snake_case is accepted on input for Istio kinds),
   * header-match names lowercased, and defaults filled in (Service ports, Workload).
   */
  resources: Resource[];
  /** Everything found, errors and warnings, sorted by file, line and column. */
  diagnostics: Diagnostic[];
}

// ---- Istio networking (networking.istio.io v1 / v1beta1 / v1alpha3) -------------------------
// Field names follow Istio's protos exactly; only the fields Weft reads are typed precisely.

export type StringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface HTTPMatchRequest {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers?: Record<string, StringMatch | Record<string, never>>;
  withoutHeaders?: Record<string, StringMatch | Record<string, never>>;
  queryParams?: Record<string, StringMatch | Record<string, never>>;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
  ignoreUriCase?: boolean;
  statPrefix?: string;
}

export interface PortSelector {
  number?: number;
}

export interface Destination {
  host: string;
  subset?: string;
  port?: PortSelector;
}

export interface HeaderOperations {
  set?: Record<string, string>;
  add?: Record<string, string>;
  remove?: string[];
}

export interface Headers {
  request?: HeaderOperations;
  response?: HeaderOperations;
}

export interface HTTPRouteDestination {
  destination: Destination;
  weight?: number;
  headers?: Headers;
}

export interface HTTPRoute {
  name?: string;
  match?: HTTPMatchRequest[];
  route?: HTTPRouteDestination[];
  redirect?: Record<string, unknown>;
  directResponse?: { status: number; body?: { string?: string; bytes?: string } };
  delegate?: { name?: string; namespace?: string };
  rewrite?: { uri?: string; authority?: string; uriRegexRewrite?: { match?: string; rewrite?: string } };
  timeout?: string;
  retries?: {
    attempts?: number;
    perTryTimeout?: string;
    retryOn?: string;
    retryRemoteLocalities?: boolean;
    retryIgnorePreviousHosts?: boolean;
    backoff?: string;
  };
  fault?: Record<string, unknown>;
  mirror?: Destination;
  mirrors?: Array<{ destination: Destination; percentage?: { value?: number } }>;
  mirrorPercentage?: { value?: number };
  corsPolicy?: Record<string, unknown>;
  headers?: Headers;
}

export interface VirtualServiceSpec {
  hosts?: string[];
  gateways?: string[];
  http?: HTTPRoute[];
  tls?: unknown[];
  tcp?: unknown[];
  exportTo?: string[];
}

export type SimpleLB = 'UNSPECIFIED' | 'LEAST_CONN' | 'RANDOM' | 'PASSTHROUGH' | 'ROUND_ROBIN' | 'LEAST_REQUEST';

export interface ConsistentHashLB {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttl?: string };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  ringHash?: { minimumRingSize?: number };
  maglev?: { tableSize?: number };
  /** Deprecated in Istio, still accepted. */
  minimumRingSize?: number;
}

export interface LoadBalancerSettings {
  simple?: SimpleLB;
  consistentHash?: ConsistentHashLB;
  localityLbSetting?: unknown;
  warmupDurationSecs?: string;
  warmup?: { duration?: string; minimumPercent?: number; aggression?: number };
}

export interface TrafficPolicy {
  loadBalancer?: LoadBalancerSettings;
  connectionPool?: Record<string, unknown>;
  outlierDetection?: Record<string, unknown>;
  tls?: Record<string, unknown>;
  portLevelSettings?: Array<TrafficPolicy & { port?: PortSelector }>;
  tunnel?: unknown;
  proxyProtocol?: unknown;
}

export interface Subset {
  name: string;
  labels?: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationRuleSpec {
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets?: Subset[];
  exportTo?: string[];
  workloadSelector?: { matchLabels?: Record<string, string> };
}

export interface ServicePort {
  number: number;
  protocol?: string;
  name: string;
  targetPort?: number;
}

export interface WorkloadEntrySpec {
  address?: string;
  ports?: Record<string, number>;
  labels?: Record<string, string>;
  network?: string;
  locality?: string;
  weight?: number;
  serviceAccount?: string;
}

export interface ServiceEntrySpec {
  hosts: string[];
  addresses?: string[];
  ports?: ServicePort[];
  location?: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  resolution?: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN' | 'DYNAMIC_DNS';
  endpoints?: WorkloadEntrySpec[];
  workloadSelector?: { labels?: Record<string, string> };
  exportTo?: string[];
  subjectAltNames?: string[];
}

// ---- Kubernetes v1 Service ------------------------------------------------------------------

export interface KubeServicePort {
  name?: string;
  port: number;
  targetPort?: number | string;
  protocol?: string;
  appProtocol?: string;
}

export interface KubeServiceSpec {
  selector?: Record<string, string>;
  ports?: KubeServicePort[];
  type?: string;
}

// ---- weft.dev/v1alpha1 ------------------------------------------------------------------------

/** A process Weft spawns with a sidecar in front of it. */
export interface WorkloadSpec {
  labels: Record<string, string>;
  serviceAccount?: string;
  command: string[];
  /** Resolved against the folder of the file that declared the workload. */
  cwd?: string;
  env?: Record<string, string>;
  /** Where the app listens; when omitted Weft picks a free port and passes it as PORT. */
  port?: number;
  replicas?: number;
}
