// Connection pool settings from a cluster's `connectionPool`: connect and idle timeouts, requests per connection, streams per HTTP/2 connection.
//
// Admission (how many requests, pending, retries) is limits.ts's business; these say how each
// connection behaves. A cluster without a `connectionPool` keeps Weft's defaults (absent here),
// and clusters with different settings get pools of their own (the settings are part of the
// pool's id), as Envoy's pools are per cluster.

import type { ClusterConfig } from '../../wire/snapshot.ts';

export interface PoolSettings {
  /** A connection not up within this is a connect failure, 503 `UF` (`tcp.connectTimeout`). */
  connectTimeoutMs: number;
  /** Close a connection idle this long; 0 = never (`http.idleTimeout`, else `tcp.idleTimeout`). */
  idleTimeoutMs: number;
  /** Requests (HTTP/2: streams) a connection carries before it is closed; 0 = no limit, 1 = no keep-alive. */
  maxRequestsPerConnection: number;
  /** HTTP/2: streams at once on one connection at most (the server's own limit still applies); 0 = the server's. */
  maxConcurrentStreams: number;
}

/** The longest a Node timer can wait: what "never" becomes. */
const MAX_TIMER_MS = 2_147_483_647;

/** The settings of a cluster with a `connectionPool`; undefined (Weft's defaults) otherwise. */
export function poolSettings(cluster: ClusterConfig): PoolSettings | undefined {
  const l = cluster.limits;
  if (!l) return undefined;
  return {
    connectTimeoutMs: l.connectTimeoutMs,
    idleTimeoutMs: l.idleTimeoutMs,
    maxRequestsPerConnection: l.maxRequestsPerConnection,
    maxConcurrentStreams: cluster.protocol === 'h2' && l.streamsPerConnection < MAX_TIMER_MS ? l.streamsPerConnection : 0,
  };
}

/** What distinguishes pools by settings (appended to a transport's id); '' for the defaults. */
export function poolId(p: PoolSettings | undefined): string {
  return p ? `~pool:${p.connectTimeoutMs},${p.idleTimeoutMs},${p.maxRequestsPerConnection},${p.maxConcurrentStreams}` : '';
}

/** undici pool options: `base` (Weft's defaults) with the cluster's settings over it. */
export function undiciOptions<B extends object>(base: B, p: PoolSettings | undefined): B & Record<string, number> {
  if (!p) return base as B & Record<string, number>;
  const idle = p.idleTimeoutMs === 0 ? MAX_TIMER_MS : Math.min(p.idleTimeoutMs, MAX_TIMER_MS);
  return {
    ...base,
    connectTimeout: p.connectTimeoutMs,
    keepAliveTimeout: idle,
    keepAliveMaxTimeout: idle,
    ...(p.maxRequestsPerConnection > 0 ? { maxRequestsPerClient: p.maxRequestsPerConnection } : {}),
  };
}

/** HTTP/2 session options (h2.ts's H2Options) from the settings. */
export function h2Options(p: PoolSettings | undefined): { connectTimeoutMs?: number; idleMs?: number; maxRequestsPerSession?: number; maxConcurrentStreams?: number } {
  if (!p) return {};
  return {
    connectTimeoutMs: p.connectTimeoutMs,
    idleMs: Math.min(p.idleTimeoutMs, MAX_TIMER_MS),
    maxRequestsPerSession: p.maxRequestsPerConnection,
    maxConcurrentStreams: p.maxConcurrentStreams,
  };
}
