// Circuit limits (Istio's `connectionPool`, Envoy's circuit breakers) for one cluster in one proxy: admit, queue or overflow each try, and allow or skip each retry; pure.
//
// Envoy's connection pool (source/common/conn_pool/conn_pool_base.cc newStreamImpl) and router
// (retry_state_impl.cc shouldRetry), as Istio configures them
// (cluster_traffic_policy.go applyConnectionPool):
//
// - Every limit is for the whole cluster (service, port, subset) as this proxy sees it, not per
//   endpoint. Istio sets each to 2^32−1 unless the DestinationRule gives a positive value (0
//   cannot be told from unset, so it means "no limit" too).
// - A try is refused at once when `http2MaxRequests` tries are already active (overflow).
//   Otherwise it goes ahead if a connection can take it; if not — `tcp.maxConnections`
//   connections are busy — it waits as pending, unless `http1MaxPendingRequests` are already
//   waiting (overflow). Overflow is an immediate 503 with flag `UO` and
//   `x-envoy-overloaded: true`, without touching the upstream. A waiting try starts, first come
//   first served, as soon as an active one releases its connection.
// - A retry may start only while fewer than `http.maxRetries` retries are in flight — or, with a
//   `retryBudget`, fewer than the budget allows (the budget replaces maxRetries). Otherwise it is
//   skipped without a word: the failure that prompted it goes back to the caller (Envoy counts
//   `upstream_rq_retry_overflow` and sets flag `UO` in the access log).
// - A connection carries one request at a time over HTTP/1.1 and up to `maxConcurrentStreams`
//   over HTTP/2, so with HTTP/2 `maxConnections` rarely makes anything wait.
//
// The pool settings (connect and idle timeouts, requests per connection, keep-alive) ride along
// in the config for whoever builds the connection pools; admission does not use them.

import type { Clock } from '../../core/clock.ts';
import { checkInt, fieldsOf, optBool, optDurationMs, optInt, UNLIMITED } from './config-fields.ts';
import { checkRetryBudgetConfig, parseRetryBudgetConfig, RetryBudget, type RetryBudgetConfig } from './retry-budget.ts';

// ---- wire config ----------------------------------------------------------------------------

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

/** Checks a config that came over the wire; throws (the proxy NACKs) when it cannot be used. */
export function checkCircuitLimitsConfig(c: CircuitLimitsConfig): void {
  for (const name of ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries', 'streamsPerConnection'] as const) {
    checkInt(`circuit limits: ${name}`, c[name], name === 'streamsPerConnection' ? 1 : 0, UNLIMITED);
  }
  for (const name of ['maxRequestsPerConnection', 'connectTimeoutMs', 'idleTimeoutMs', 'maxConnectionDurationMs'] as const) {
    checkInt(`circuit limits: ${name}`, c[name], 0, Number.MAX_SAFE_INTEGER);
  }
  if (c.retryBudget) checkRetryBudgetConfig(c.retryBudget);
}

// ---- runtime --------------------------------------------------------------------------------

/** What overflow looks like to the caller, as Envoy answers it; the access log gets flag `UO`. */
export const OVERFLOW_RESPONSE = Object.freeze({
  status: 503,
  flag: 'UO',
  headers: Object.freeze({ 'x-envoy-overloaded': 'true' }),
  body: 'upstream connect error or disconnect/reset before headers. reset reason: overflow',
});

/** A try that may go ahead. Call `release` once when it ends (answered, failed or abandoned); extra calls do nothing. */
export interface Go {
  kind: 'go';
  release(): void;
}

/**
 * What `admit` decides for one try:
 * - `go`: send it now;
 * - `queue`: all connections are busy; `ready` resolves with a `go` when one frees up (first come,
 *   first served) — or with `cancelled` after `cancel()`, which the caller must call if it stops
 *   waiting (route timeout, client gone). A `cancel` after the `go` was handed over releases it;
 *   so a caller that gives up can always just call `cancel()`;
 * - `overflow`: answer 503 `UO` now (see OVERFLOW_RESPONSE); `limit` says which limit was hit.
 */
export type Admission =
  | Go
  | { kind: 'queue'; ready: Promise<Go | { kind: 'cancelled' }>; cancel(): void }
  | { kind: 'overflow'; limit: 'max_requests' | 'max_pending_requests' };

/** A retry allowed to run; release it when the retry's try ends. */
export interface RetryTicket {
  release(): void;
}

/** Gauges and counters in Envoy's terms, for metrics. */
export interface CircuitLimitsState {
  /** Tries holding a connection (`upstream_rq_active`). */
  active: number;
  /** Tries waiting for one (`upstream_rq_pending_active`). */
  pending: number;
  /** Retries in flight. */
  retries: number;
  /** `upstream_rq_pending_overflow`: refused because the pending queue was full or max requests reached. */
  overflow: number;
  /** `upstream_rq_retry_overflow`: retries skipped. */
  retryOverflow: number;
}

interface Waiter {
  resolve(r: Go | { kind: 'cancelled' }): void;
  /** Set when a connection was handed over: a `cancel` that comes too late gives it back. */
  granted?: Go;
  done: boolean;
}

/**
 * The limits of one cluster in one proxy. Keep one per cluster for the proxy's life (in-flight
 * counts must survive snapshot swaps); a changed config can be applied with `reconfigure`.
 * Call `admit()` for every try, retries included.
 */
export class CircuitLimits {
  private cfg: Readonly<CircuitLimitsConfig>;
  private budget: RetryBudget | undefined;
  private readonly clock: Clock;
  private active = 0;
  private retries = 0;
  private readonly waiting: Waiter[] = [];
  private overflow = 0;
  private retryOverflow = 0;

  constructor(config: CircuitLimitsConfig, clock: Clock) {
    this.clock = clock;
    checkCircuitLimitsConfig(config);
    this.cfg = Object.freeze({ ...config });
    this.budget = config.retryBudget ? new RetryBudget(config.retryBudget, clock) : undefined;
  }

  get config(): Readonly<CircuitLimitsConfig> {
    return this.cfg;
  }

  /** New limits for the same cluster; tries in flight and waiting keep their places. */
  reconfigure(config: CircuitLimitsConfig): void {
    checkCircuitLimitsConfig(config);
    const budgetChanged = JSON.stringify(config.retryBudget) !== JSON.stringify(this.cfg.retryBudget);
    this.cfg = Object.freeze({ ...config });
    if (budgetChanged) this.budget = config.retryBudget ? new RetryBudget(config.retryBudget, this.clock) : undefined;
    this.drain();
  }

  /** Decide one try: go, wait for a connection, or overflow. Never waits itself. */
  admit(): Admission {
    if (this.active >= this.cfg.maxRequests) return this.overflowed('max_requests');
    if (this.active < this.capacity()) {
      this.budget?.onRequest();
      return this.go();
    }
    if (this.waiting.length >= this.cfg.maxPendingRequests) return this.overflowed('max_pending_requests');
    this.budget?.onRequest();
    let resolve!: Waiter['resolve'];
    const ready = new Promise<Go | { kind: 'cancelled' }>((r) => (resolve = r));
    const waiter: Waiter = { resolve, done: false };
    this.waiting.push(waiter);
    return {
      kind: 'queue',
      ready,
      cancel: () => {
        if (waiter.granted) waiter.granted.release();
        if (waiter.done) return;
        waiter.done = true;
        const i = this.waiting.indexOf(waiter);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve({ kind: 'cancelled' });
      },
    };
  }

  /** Whether a retry could start now (a peek; `beginRetry` decides and counts). */
  retryAllowed(): boolean {
    return this.retries < this.retryLimit();
  }

  /**
   * Start a retry if the limits allow: a ticket to release when the retry's try ends, or
   * undefined — skip the retry silently and return the failure that prompted it.
   */
  beginRetry(): RetryTicket | undefined {
    if (!this.retryAllowed()) {
      this.retryOverflow++;
      return undefined;
    }
    this.retries++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.retries--;
      },
    };
  }

  state(): CircuitLimitsState {
    return { active: this.active, pending: this.waiting.length, retries: this.retries, overflow: this.overflow, retryOverflow: this.retryOverflow };
  }

  // ---- internals ------------------------------------------------------------------------------

  /** Tries that can hold a connection at once. */
  private capacity(): number {
    return this.cfg.maxConnections * this.cfg.streamsPerConnection;
  }

  private retryLimit(): number {
    return this.budget ? this.budget.limit(this.active + this.waiting.length) : this.cfg.maxRetries;
  }

  private overflowed(limit: 'max_requests' | 'max_pending_requests'): Admission {
    this.overflow++;
    return { kind: 'overflow', limit };
  }

  private go(): Go {
    this.active++;
    let released = false;
    return {
      kind: 'go',
      release: () => {
        if (released) return;
        released = true;
        this.active--;
        this.drain();
      },
    };
  }

  /** Hand freed connections to waiting tries, oldest first. */
  private drain(): void {
    while (this.waiting.length > 0 && this.active < this.capacity() && this.active < this.cfg.maxRequests) {
      const waiter = this.waiting.shift()!;
      waiter.done = true;
      waiter.granted = this.go();
      waiter.resolve(waiter.granted);
    }
  }
}
