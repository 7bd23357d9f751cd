// Connection pool settings from a cluster's `connectionPool`: connect and idle timeouts, requests per connection, streams per HTTP/2 connection, connection lifetime, TCP and HTTP/2 keepalive.
//
// Admission (how many requests, pending, retries) is limits.ts's business; these say how each
// connection behaves. A cluster without a `connectionPool` keeps Weft's defaults (absent here),
// and clusters with different settings get pools of their own (the settings are part of the
// pool's id), as Envoy's pools are per cluster.

import type { Socket } from 'node:net';
import type { ClusterConfig } from '../../wire/snapshot.ts';
import type { H1Options } from './h1.ts';
import type { H2Options } from './h2.ts';

export interface PoolSettings {
  /** A connection not up within this is a connect failure, 503 `UF` (`tcp.connectTimeout`). */
  connectTimeoutMs: number;
  /** Close a connection idle this long; 0 = never (`http.idleTimeout`, else `tcp.idleTimeout`). */
  idleTimeoutMs: number;
  /** Requests (HTTP/2: streams) a connection carries before it is closed; 0 = no limit, 1 = no keep-alive. */
  maxRequestsPerConnection: number;
  /** HTTP/2: streams at once on one connection at most (the server's own limit still applies); 0 = the server's. */
  maxConcurrentStreams: number;
  /**
   * A connection this long after it was established takes no new requests and closes once those
   * in flight are done (Envoy's drain); 0 = no limit (`tcp.maxConnectionDuration`).
   */
  maxConnectionDurationMs: number;
  /**
   * SO_KEEPALIVE on every upstream socket, first probe after this long idle (0 = the OS's idle
   * time); absent = Weft's defaults: 60 s on plain HTTP/1.1 connections (as undici's pools had),
   * none on other sockets (`tcp.tcpKeepalive.time`).
   */
  tcpKeepaliveMs?: number;
  /** With tcpKeepaliveMs: time between unanswered probes (`tcpKeepalive.interval`); absent = Node's 1 s. */
  tcpKeepaliveIntervalMs?: number;
  /** With tcpKeepaliveMs: unanswered probes before the connection is dropped (`tcpKeepalive.probes`); absent = Node's 10. */
  tcpKeepaliveProbes?: number;
  /** HTTP/2: a PING every intervalMs; no ACK within timeoutMs closes the session (`http.http2KeepAlive`). */
  http2KeepAlive?: { intervalMs: number; timeoutMs: number };
}

/** The longest a Node timer can wait: what "never" becomes. */
const MAX_TIMER_MS = 2_147_483_647;
/** Linux's largest TCP_KEEPIDLE and TCP_KEEPINTVL, in seconds, and TCP_KEEPCNT. */
const MAX_KEEPIDLE_S = 32_767;
const MAX_KEEPCNT = 127;

/** A keepalive time as libuv takes it: whole seconds, rounded up, within Linux's maximum. */
function wholeSeconds(ms: number): number {
  return Math.min(Math.ceil(ms / 1000), MAX_KEEPIDLE_S) * 1000;
}

/** The settings of a cluster with a `connectionPool`; undefined (Weft's defaults) otherwise. */
export function poolSettings(cluster: ClusterConfig): PoolSettings | undefined {
  const l = cluster.limits;
  if (!l) return undefined;
  const p: PoolSettings = {
    connectTimeoutMs: l.connectTimeoutMs,
    idleTimeoutMs: l.idleTimeoutMs,
    maxRequestsPerConnection: l.maxRequestsPerConnection,
    maxConcurrentStreams: cluster.protocol === 'h2' && l.streamsPerConnection < MAX_TIMER_MS ? l.streamsPerConnection : 0,
    maxConnectionDurationMs: l.maxConnectionDurationMs,
  };
  // libuv counts the idle time in whole seconds (and takes 0 as "leave it"): round up, so a
  // sub-second `time` still turns probing on rather than falling back to the OS's two hours; and
  // cap it at Linux's maximum, past which the kernel refuses it (and keeps its default).
  const ka = l.tcpKeepalive;
  if (ka) {
    p.tcpKeepaliveMs = ka.timeMs ? wholeSeconds(ka.timeMs) : 0;
    if (ka.intervalMs) p.tcpKeepaliveIntervalMs = wholeSeconds(ka.intervalMs);
    // Linux takes 1..127 probes (TCP_KEEPCNT); 0 means "not set" in Istio's proto.
    if (ka.probes) p.tcpKeepaliveProbes = Math.min(ka.probes, MAX_KEEPCNT);
  }
  if (l.http2KeepAlive) p.http2KeepAlive = { intervalMs: l.http2KeepAlive.intervalMs, timeoutMs: l.http2KeepAlive.timeoutMs };
  return p;
}

/** What distinguishes pools by settings (appended to a transport's id); '' for the defaults. */
export function poolId(p: PoolSettings | undefined): string {
  if (!p) return '';
  const ka = p.http2KeepAlive;
  const tcp = p.tcpKeepaliveMs === undefined ? '-' : `${p.tcpKeepaliveMs}/${p.tcpKeepaliveIntervalMs ?? '-'}/${p.tcpKeepaliveProbes ?? '-'}`;
  return `~pool:${p.connectTimeoutMs},${p.idleTimeoutMs},${p.maxRequestsPerConnection},${p.maxConcurrentStreams},${p.maxConnectionDurationMs},${tcp},${ka ? `${ka.intervalMs}/${ka.timeoutMs}` : '-'}`;
}

/**
 * `tcp.tcpKeepalive` on a socket Weft dials: SO_KEEPALIVE with the configured idle time. Set once
 * the TCP connection is up (also for TLS, whose 'connect' comes before the handshake): set
 * earlier without a time, libuv would impose its own 60 s instead of the OS's default.
 */
export function withTcpKeepalive<S extends Socket>(socket: S, p: PoolSettings | undefined): S {
  if (p?.tcpKeepaliveMs !== undefined) socket.once('connect', () => keepalive(socket, p));
  return socket;
}

/**
 * Node 24's `setKeepAlive` also takes the probe interval and count (TCP_KEEPINTVL, TCP_KEEPCNT);
 * @types/node does not say so yet. An older Node ignores the two extra arguments.
 */
type SetKeepAlive = (enable: boolean, initialDelayMs?: number, intervalMs?: number, count?: number) => unknown;

/** SO_KEEPALIVE with the cluster's idle time, probe interval and probe count. */
export function keepalive(socket: Pick<Socket, 'setKeepAlive'>, p: PoolSettings): void {
  (socket.setKeepAlive as unknown as SetKeepAlive).call(socket, true, p.tcpKeepaliveMs, p.tcpKeepaliveIntervalMs, p.tcpKeepaliveProbes);
}

/** HTTP/1.1 pool options (h1.ts's H1Options) from the settings. */
export function h1Options(p: PoolSettings | undefined): Pick<H1Options, 'connectTimeoutMs' | 'idleMs' | 'maxRequestsPerConnection' | 'maxConnectionDurationMs'> {
  if (!p) return {};
  return {
    connectTimeoutMs: p.connectTimeoutMs,
    idleMs: Math.min(p.idleTimeoutMs, MAX_TIMER_MS),
    maxRequestsPerConnection: p.maxRequestsPerConnection,
    // Checked when a connection is picked for a request or freed by one: one past its duration is
    // then closed (after its request in flight); an idle one by the idle timeout at the latest.
    maxConnectionDurationMs: p.maxConnectionDurationMs,
  };
}

/** HTTP/2 session options (h2.ts's H2Options) from the settings. */
export function h2Options(p: PoolSettings | undefined): Pick<H2Options, 'connectTimeoutMs' | 'idleMs' | 'maxRequestsPerSession' | 'maxConcurrentStreams' | 'maxSessionDurationMs' | 'keepAlive'> {
  if (!p) return {};
  return {
    connectTimeoutMs: p.connectTimeoutMs,
    idleMs: Math.min(p.idleTimeoutMs, MAX_TIMER_MS),
    maxRequestsPerSession: p.maxRequestsPerConnection,
    maxConcurrentStreams: p.maxConcurrentStreams,
    ...(p.maxConnectionDurationMs > 0 ? { maxSessionDurationMs: Math.min(p.maxConnectionDurationMs, MAX_TIMER_MS) } : {}),
    ...(p.http2KeepAlive
      ? { keepAlive: { intervalMs: Math.min(p.http2KeepAlive.intervalMs, MAX_TIMER_MS), timeoutMs: Math.min(p.http2KeepAlive.timeoutMs, MAX_TIMER_MS) } }
      : {}),
  };
}
