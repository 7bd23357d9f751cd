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
// - A WebSocket upgrade is admitted like any try and holds its `go` for as long as the upgraded
//   connection lives (websocket.ts): Envoy's pool counts the upgrade's stream until it ends.
//
// The pool settings (connect and idle timeouts, requests per connection, keep-alive) ride along
// in the config for whoever builds the connection pools; admission does not use them.

import type { Clock } from '../../core/clock.ts';
import { checkInt, UNLIMITED } from '../../core/config-fields.ts';
import type { CircuitLimitsConfig } from '../../wire/resilience.ts';
import { checkRetryBudgetConfig, RetryBudget } from './retry-budget.ts';

export type { CircuitLimitsConfig } from '../../wire/resilience.ts';

// ---- wire config ----------------------------------------------------------------------------
// The config arrives filled in (src/translate/resilience.ts parses Istio's fields).

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
 * - `overflow`: answer 503 `UO` now (the mesh error OVERFLOW, core/errors.ts); `limit` says which limit was hit.
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
