// Istio's resilience fields → wire configs: connectionPool, outlierDetection and retryBudget of a DestinationRule, a FallbackPolicy, and Weft's streaming timeout annotations.
//
// Pure: each function reads the fields as the api layer hands them over (camelCase, durations as
// strings), fills in Istio's and Envoy's defaults, and throws one clear error on what Istio
// rejects. The proxy re-checks what arrives (src/proxy/upstream/{outlier,limits,retry-budget}.ts,
// src/proxy/fallback/cache.ts) and keeps the runtime state.

import { fieldsOf, optBool, optDurationMs, optInt, optNumber, UNLIMITED } from '../core/config-fields.ts';
import type { Resource } from '../api/types.ts';
import type { FallbackPolicySpec } from '../api/fallbackpolicy.ts';
import { fqdn } from '../api/hosts.ts';
import type { UpstreamProtocol } from '../wire/snapshot.ts';
import type { CircuitLimitsConfig, FallbackCacheConfig, FallbackConfig, OutlierConfig, RetryBudgetConfig } from '../wire/resilience.ts';
import type { ClusterTrafficPolicy } from './destination-rule.ts';

// ---- per cluster ----------------------------------------------------------------------------

/** connectionPool fields that only choose the protocol (protocol.ts reads them), not limits. */
const PROTOCOL_ONLY = new Set(['h2UpgradePolicy', 'useClientProtocol']);

/**
 * The limits and outlier detection of a cluster from its merged traffic policy. Absent when the
 * policy sets none, which is exactly Istio's default (no limits to speak of, no ejection); a
 * connectionPool that only chooses the protocol sets no limits either.
 */
export function clusterResilience(
  policy: ClusterTrafficPolicy | undefined,
  protocol: UpstreamProtocol,
): { limits?: CircuitLimitsConfig; outlierDetection?: OutlierConfig } {
  const out: { limits?: CircuitLimitsConfig; outlierDetection?: OutlierConfig } = {};
  const pool = policy?.connectionPool as { tcp?: unknown; http?: Record<string, unknown> } | undefined;
  const setsLimits = pool !== undefined && (pool.tcp !== undefined || Object.keys(pool.http ?? {}).some((k) => !PROTOCOL_ONLY.has(k)));
  if (setsLimits || policy?.retryBudget !== undefined) out.limits = parseCircuitLimitsConfig(pool, policy?.retryBudget, { protocol });
  if (policy?.outlierDetection !== undefined) out.outlierDetection = parseOutlierConfig(policy.outlierDetection);
  return out;
}

/** A FallbackPolicy as a cluster carries it, its route still a host (translate makes it a cluster). */
export type FallbackTarget = Omit<FallbackConfig, 'route'> & { route?: { host: string; subset?: string } };

/**
 * Which FallbackPolicy protects (host, subset): one for that subset, else one for the host
 * without a subset; among several for the same target the first in file order (analyze warns).
 * Hosts resolve in the policy's namespace, as a DestinationRule's do.
 */
export function fallbackIndex(resources: readonly Resource[]): (host: string, subset: string | undefined) => FallbackTarget | undefined {
  const byTarget = new Map<string, FallbackTarget>();
  for (const r of resources) {
    if (r.kind !== 'FallbackPolicy' || !r.apiVersion.startsWith('weft.dev/')) continue;
    const spec = r.spec as FallbackPolicySpec;
    const ns = r.metadata.namespace;
    const key = `${fqdn(spec.host, ns)}|${spec.subset ?? ''}`;
    if (byTarget.has(key)) continue;
    const target: FallbackTarget = { policy: `${ns}/${r.metadata.name}`, on: [...spec.on] };
    if (spec.cache) target.cache = parseFallbackCacheConfig(spec.cache);
    if (spec.route) target.route = { host: fqdn(spec.route.host, ns), ...(spec.route.subset ? { subset: spec.route.subset } : {}) };
    if (spec.response) target.response = { status: spec.response.status, headers: { ...spec.response.headers }, body: spec.response.body };
    byTarget.set(key, target);
  }
  return (host, subset) => (subset !== undefined ? byTarget.get(`${host}|${subset}`) : undefined) ?? byTarget.get(`${host}|`);
}

// ---- outlierDetection -----------------------------------------------------------------------

/** Envoy's defaults, which Istio keeps for fields a DestinationRule leaves unset. */
export const OUTLIER_DEFAULTS = Object.freeze({
  consecutive5xx: 5,
  consecutiveLocalOriginFailures: 5,
  intervalMs: 10_000,
  baseEjectionTimeMs: 30_000,
  maxEjectionTimeMs: 300_000,
  maxEjectionPercent: 10,
});

const UINT32_MAX = 4294967295;
const INT32_MAX = 2147483647;

const ISTIO_FIELDS = [
  'splitExternalLocalOriginErrors',
  'consecutiveLocalOriginFailures',
  'consecutiveGatewayErrors',
  'consecutive5xxErrors',
  'interval',
  'baseEjectionTime',
  'maxEjectionPercent',
  'minHealthPercent',
  'consecutiveErrors',
  'outlierDetectionHttpErrorCodes',
];

export interface OutlierParseOptions {
  /**
   * Envoy's `always_eject_one_host`: the first ejection ignores `maxEjectionPercent`. Weft's
   * default is true — the rule SEMANTICS.md and issue 5 give ("10 %, but at least one"), which was
   * Envoy's behaviour before 1.28; without it a service with fewer than 10 endpoints under the
   * default 10 % would never eject a failing replica (docs/decisions.md item 16).
   */
  alwaysEjectOneHost?: boolean;
}

/**
 * Istio `OutlierDetection` fields (as the api layer reads them: camelCase, durations as strings)
 * → an OutlierConfig with Istio's and Envoy's defaults filled in. Throws on what Istio rejects.
 * The deprecated `consecutiveErrors` is accepted and ignored, as Istio's translation ignores it.
 */
export function parseOutlierConfig(istio: unknown, options: OutlierParseOptions = {}): OutlierConfig {
  const what = 'outlierDetection';
  const f = fieldsOf(istio, what, ISTIO_FIELDS);
  const split = optBool(f, what, 'splitExternalLocalOriginErrors') ?? false;
  const localOrigin = optInt(f, what, 'consecutiveLocalOriginFailures', 0, UINT32_MAX);
  if (!split && (localOrigin ?? 0) > 0) {
    throw new Error(`${what}.consecutiveLocalOriginFailures: needs splitExternalLocalOriginErrors: true`);
  }
  const maxPercent = optInt(f, what, 'maxEjectionPercent', 0, 100);
  const base = optDurationMs(f, what, 'baseEjectionTime') ?? OUTLIER_DEFAULTS.baseEjectionTimeMs;
  const codes = f.outlierDetectionHttpErrorCodes;
  let errorStatusCodes: number[] | undefined;
  if (codes !== undefined && codes !== null) {
    if (!Array.isArray(codes)) throw new Error(`${what}.outlierDetectionHttpErrorCodes: expected a list of status codes`);
    errorStatusCodes = codes.map((c, i) => {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 100 || c > 599) {
        throw new Error(`${what}.outlierDetectionHttpErrorCodes[${i}]: ${JSON.stringify(c)} is not a status code in 100..599`);
      }
      return c;
    });
    if (errorStatusCodes.length === 0) errorStatusCodes = undefined;
  }
  optInt(f, what, 'consecutiveErrors', -2147483648, INT32_MAX); // type-checked, then ignored
  const config: OutlierConfig = {
    consecutive5xx: optInt(f, what, 'consecutive5xxErrors', 0, UINT32_MAX) ?? OUTLIER_DEFAULTS.consecutive5xx,
    consecutiveGatewayErrors: optInt(f, what, 'consecutiveGatewayErrors', 0, UINT32_MAX) ?? 0,
    splitExternalLocalOriginErrors: split,
    // Istio passes the value only when > 0; otherwise Envoy's default (5, enforced) applies.
    consecutiveLocalOriginFailures: localOrigin || OUTLIER_DEFAULTS.consecutiveLocalOriginFailures,
    intervalMs: optDurationMs(f, what, 'interval') ?? OUTLIER_DEFAULTS.intervalMs,
    baseEjectionTimeMs: base,
    maxEjectionTimeMs: Math.max(OUTLIER_DEFAULTS.maxEjectionTimeMs, base),
    maxEjectionPercent: maxPercent || OUTLIER_DEFAULTS.maxEjectionPercent,
    alwaysEjectOneHost: options.alwaysEjectOneHost ?? true,
    minHealthPercent: optInt(f, what, 'minHealthPercent', 0, 100) ?? 0,
  };
  if (errorStatusCodes) config.errorStatusCodes = errorStatusCodes;
  return config;
}

// ---- connectionPool -------------------------------------------------------------------------

export const LIMIT_DEFAULTS = Object.freeze({
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 3_600_000,
  /** Istio's documented default for `maxConcurrentStreams` (2^31−1). */
  maxConcurrentStreams: 2147483647,
});

export interface CircuitLimitsOptions {
  /** How the proxy speaks to this cluster's endpoints (decides streams per connection). */
  protocol?: 'http1' | 'h2';
  /** The mesh's `connectTimeout` (MeshConfig), used when the DestinationRule sets none. */
  meshConnectTimeoutMs?: number;
}

const TCP_FIELDS = ['maxConnections', 'connectTimeout', 'tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'];
const HTTP_FIELDS = [
  'http1MaxPendingRequests',
  'http2MaxRequests',
  'maxRequestsPerConnection',
  'maxRetries',
  'idleTimeout',
  'h2UpgradePolicy',
  'useClientProtocol',
  'maxConcurrentStreams',
  'http2KeepAlive',
];

const positive = (v: number | undefined): number => (v !== undefined && v > 0 ? v : UNLIMITED);

/**
 * Istio `ConnectionPoolSettings` fields (and the traffic policy's `retryBudget`) → a
 * CircuitLimitsConfig. Either may be absent: a cluster without a connection pool still has
 * Istio's (unlimited) limits and the mesh's connect timeout. Throws on what Istio rejects.
 * `h2UpgradePolicy` and `useClientProtocol` choose the protocol, which is the caller's business
 * (pass it in `options.protocol`).
 */
export function parseCircuitLimitsConfig(connectionPool: unknown, retryBudget?: unknown, options: CircuitLimitsOptions = {}): CircuitLimitsConfig {
  const pool = fieldsOf(connectionPool, 'connectionPool', ['tcp', 'http']);
  const tcp = fieldsOf(pool.tcp, 'connectionPool.tcp', TCP_FIELDS);
  const http = fieldsOf(pool.http, 'connectionPool.http', HTTP_FIELDS);
  const t = 'connectionPool.tcp';
  const h = 'connectionPool.http';
  const int32 = 2147483647;
  const streams = optInt(http, h, 'maxConcurrentStreams', 0, int32);
  optBool(http, h, 'useClientProtocol');
  const upgrade = http.h2UpgradePolicy;
  if (upgrade !== undefined && !['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE'].includes(upgrade as string)) {
    throw new Error(`${h}.h2UpgradePolicy: unsupported value ${JSON.stringify(upgrade)}`);
  }
  // Istio: the HTTP idle timeout wins; the TCP one (where 0s turns it off) applies otherwise.
  const idle = optDurationMs(http, h, 'idleTimeout') ?? optDurationMs(tcp, t, 'idleTimeout', { istio: false }) ?? LIMIT_DEFAULTS.idleTimeoutMs;
  const config: CircuitLimitsConfig = {
    maxConnections: positive(optInt(tcp, t, 'maxConnections', 0, int32)),
    maxPendingRequests: positive(optInt(http, h, 'http1MaxPendingRequests', 0, int32)),
    maxRequests: positive(optInt(http, h, 'http2MaxRequests', 0, int32)),
    maxRetries: positive(optInt(http, h, 'maxRetries', 0, int32)),
    streamsPerConnection: options.protocol === 'h2' ? streams || LIMIT_DEFAULTS.maxConcurrentStreams : 1,
    maxRequestsPerConnection: optInt(http, h, 'maxRequestsPerConnection', 0, int32) ?? 0,
    connectTimeoutMs: optDurationMs(tcp, t, 'connectTimeout') ?? options.meshConnectTimeoutMs ?? LIMIT_DEFAULTS.connectTimeoutMs,
    idleTimeoutMs: idle,
    maxConnectionDurationMs: optDurationMs(tcp, t, 'maxConnectionDuration') ?? 0,
  };
  if (tcp.tcpKeepalive !== undefined && tcp.tcpKeepalive !== null) {
    const k = fieldsOf(tcp.tcpKeepalive, `${t}.tcpKeepalive`, ['probes', 'time', 'interval']);
    const kw = `${t}.tcpKeepalive`;
    const keepalive: NonNullable<CircuitLimitsConfig['tcpKeepalive']> = {};
    const probes = optInt(k, kw, 'probes', 0, 4294967295);
    const time = optDurationMs(k, kw, 'time');
    const interval = optDurationMs(k, kw, 'interval');
    if (probes !== undefined) keepalive.probes = probes;
    if (time !== undefined) keepalive.timeMs = time;
    if (interval !== undefined) keepalive.intervalMs = interval;
    config.tcpKeepalive = keepalive;
  }
  if (http.http2KeepAlive !== undefined && http.http2KeepAlive !== null) {
    const kw = `${h}.http2KeepAlive`;
    const k = fieldsOf(http.http2KeepAlive, kw, ['interval', 'timeout']);
    const intervalMs = optDurationMs(k, kw, 'interval');
    const timeoutMs = optDurationMs(k, kw, 'timeout');
    if (intervalMs === undefined || timeoutMs === undefined) throw new Error(`${kw}: interval and timeout are both required`);
    config.http2KeepAlive = { intervalMs, timeoutMs };
  }
  if (retryBudget !== undefined && retryBudget !== null) config.retryBudget = parseRetryBudgetConfig(retryBudget);
  return config;
}

// ---- retryBudget ----------------------------------------------------------------------------

export const RETRY_BUDGET_DEFAULTS: Readonly<RetryBudgetConfig> = Object.freeze({ percent: 20, minRetryConcurrency: 3, budgetIntervalMs: 0 });

/**
 * Istio `TrafficPolicy.RetryBudget` fields → a RetryBudgetConfig. As in Istio, a
 * `minRetryConcurrency` of 0 means the default 3 (proto3 cannot tell 0 from unset), while an
 * explicit `percent: 0` is kept (it is a wrapper type): the minimum alone then limits retries.
 */
export function parseRetryBudgetConfig(istio: unknown): RetryBudgetConfig {
  const what = 'retryBudget';
  const f = fieldsOf(istio, what, ['percent', 'minRetryConcurrency', 'budgetInterval']);
  return {
    percent: optNumber(f, what, 'percent', 0, 100) ?? RETRY_BUDGET_DEFAULTS.percent,
    minRetryConcurrency: optInt(f, what, 'minRetryConcurrency', 0, 4294967295) || RETRY_BUDGET_DEFAULTS.minRetryConcurrency,
    budgetIntervalMs: optDurationMs(f, what, 'budgetInterval', { istio: false }) ?? 0,
  };
}

// ---- FallbackPolicy cache --------------------------------------------------------------------

export const CACHE_DEFAULTS: Readonly<FallbackCacheConfig> = Object.freeze({
  ttlMs: 300_000,
  maxEntries: 1000,
  maxBytes: 16 * 1024 * 1024,
  keyHeaders: Object.freeze([]) as unknown as string[],
  keyBody: true,
});

/** Header names: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A FallbackPolicy's `cache` block (`{ttl, maxEntries, maxBytes, key: {headers, body}}`, ttl as
 * a duration string) → a FallbackCacheConfig with defaults filled in. Throws when invalid.
 */
export function parseFallbackCacheConfig(fields: unknown): FallbackCacheConfig {
  const what = 'cache';
  const f = fieldsOf(fields, what, ['ttl', 'maxEntries', 'maxBytes', 'key']);
  const key = fieldsOf(f.key, `${what}.key`, ['headers', 'body']);
  const headers = key.headers ?? [];
  if (!Array.isArray(headers)) throw new Error(`${what}.key.headers: expected a list of header names`);
  const keyHeaders: string[] = [];
  headers.forEach((h, i) => {
    if (typeof h !== 'string' || !TOKEN.test(h)) throw new Error(`${what}.key.headers[${i}]: ${JSON.stringify(h)} is not a header name`);
    const lower = h.toLowerCase();
    if (keyHeaders.includes(lower)) throw new Error(`${what}.key.headers[${i}]: ${JSON.stringify(h)} is listed twice`);
    keyHeaders.push(lower);
  });
  return {
    ttlMs: optDurationMs(f, what, 'ttl') ?? CACHE_DEFAULTS.ttlMs,
    maxEntries: optInt(f, what, 'maxEntries', 1, Number.MAX_SAFE_INTEGER) ?? CACHE_DEFAULTS.maxEntries,
    maxBytes: optInt(f, what, 'maxBytes', 1, Number.MAX_SAFE_INTEGER) ?? CACHE_DEFAULTS.maxBytes,
    keyHeaders,
    keyBody: optBool(key, `${what}.key`, 'body') ?? CACHE_DEFAULTS.keyBody,
  };
}

