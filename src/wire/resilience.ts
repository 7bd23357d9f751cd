// Resilience on the wire: circuit limits, outlier detection, retry budget and fallbacks of one cluster, as plain JSON.
//
// Translation fills these from Istio's `connectionPool`, `outlierDetection` and `retryBudget`
// (src/translate/resilience.ts, with Istio's and Envoy's defaults written out) and from Weft's
// FallbackPolicy; the proxy checks them when it compiles a snapshot (a bad one is NACKed) and
// keeps their runtime state per cluster (src/proxy/upstream/cluster-state.ts).

/** Compiled outlier detection for one cluster. */
export interface OutlierConfig {
  /** Consecutive 5xx (and, unless split, local-origin failures) before an ejection; 0 = off. */
  consecutive5xx: number;
  /** Consecutive 502/503/504 before an ejection; 0 = off (Istio enforces it only when set). */
  consecutiveGatewayErrors: number;
  /** Count local-origin failures (connect, reset, timeout) apart from upstream answers. */
  splitExternalLocalOriginErrors: boolean;
  /** With the split: consecutive local-origin failures before an ejection. */
  consecutiveLocalOriginFailures: number;
  /** How often the sweep runs (un-ejection, multiplier decay). */
  intervalMs: number;
  baseEjectionTimeMs: number;
  /** Cap on one ejection's duration. */
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
  /** Envoy's `always_eject_one_host`: the first ejection ignores maxEjectionPercent. */
  alwaysEjectOneHost: boolean;
  /** Envoy's healthy panic threshold; 0 = never panic. */
  minHealthPercent: number;
  /** Istio's `outlierDetectionHttpErrorCodes`: when set, only these statuses are errors. */
  errorStatusCodes?: number[];
}

/** The retry budget of one cluster (Istio's `trafficPolicy.retryBudget`). */
export interface RetryBudgetConfig {
  /** Retries in flight may be at most this percentage of the requests (0–100). */
  percent: number;
  /** …but never fewer than this many. */
  minRetryConcurrency: number;
  /** 0: the requests are those active and pending now. Otherwise: those started in this window. */
  budgetIntervalMs: number;
}

/** Istio's `connectionPool` (and the policy's `retryBudget`) for one cluster, defaults filled in. */
export interface CircuitLimitsConfig {
  /** `tcp.maxConnections`: connections to all endpoints of the cluster. */
  maxConnections: number;
  /** `http.http1MaxPendingRequests`: tries waiting for a connection. */
  maxPendingRequests: number;
  /** `http.http2MaxRequests`: tries active at once (HTTP/1.1 and HTTP/2 alike). */
  maxRequests: number;
  /** `http.maxRetries`: retries in flight at once (ignored when `retryBudget` is set). */
  maxRetries: number;
  /** Requests a connection may carry at once: 1 for HTTP/1.1, `maxConcurrentStreams` for HTTP/2. */
  streamsPerConnection: number;
  /** `http.maxRequestsPerConnection`: requests before a connection is closed; 0 = no limit (1 disables keep-alive). */
  maxRequestsPerConnection: number;
  /** `tcp.connectTimeout` (Istio's mesh default 10 s); a connect timeout answers 503 `UF`. */
  connectTimeoutMs: number;
  /** `http.idleTimeout`, else `tcp.idleTimeout`; Envoy's default 1 h; 0 = never. */
  idleTimeoutMs: number;
  /** `tcp.maxConnectionDuration`; 0 = no limit. */
  maxConnectionDurationMs: number;
  /** `tcp.tcpKeepalive`, when set (absent fields: the OS's settings). */
  tcpKeepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
  /** `http.http2KeepAlive`: PING every interval, close after timeout without an answer. */
  http2KeepAlive?: { intervalMs: number; timeoutMs: number };
  /** The traffic policy's `retryBudget`, when set. */
  retryBudget?: RetryBudgetConfig;
}

/** A FallbackPolicy's answer cache. */
export interface FallbackCacheConfig {
  ttlMs: number;
  maxEntries: number;
  /** Bound on the bytes held: bodies, header names and values, and keys. */
  maxBytes: number;
  /** Request headers (lowercase) whose values are part of the key, in order. */
  keyHeaders: string[];
  /** Whether a hash of the request body is part of the key. */
  keyBody: boolean;
}

/** When a fallback answers instead of the failure (see api/fallbackpolicy.ts). */
export type FallbackTriggerConfig = 'unavailable' | 'overflow' | 'timeout' | '5xx';

/**
 * The FallbackPolicy that protects a cluster. The parts present are tried in order: cache, route,
 * response; every answer they give carries `x-weft-fallback: cache|route|static`.
 */
export interface FallbackConfig {
  /** `<namespace>/<name>` of the FallbackPolicy: its cache is shared by every cluster it protects. */
  policy: string;
  on: FallbackTriggerConfig[];
  cache?: FallbackCacheConfig;
  /** Another cluster of the same snapshot, tried once. */
  route?: { cluster: string };
  response?: { status: number; headers: Record<string, string>; body: string };
}
