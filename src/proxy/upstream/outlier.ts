// Outlier detection (Istio's `outlierDetection`): Envoy's consecutive-error ejection for one cluster in one proxy; pure, time from an injected Clock.
//
// What this follows, and where from (Envoy source/common/upstream/outlier_detection_impl.cc,
// Istio pilot/pkg/networking/core/cluster_traffic_policy.go `applyOutlierDetection`):
//
// - Counting is per endpoint, per proxy. A response that is not an error resets the consecutive
//   counters. An error counter that reaches its threshold *exactly* triggers an ejection attempt
//   at once (inline, not at the next sweep) and is then reset, whether or not the ejection
//   happened, so the next bout of N errors is noticed again.
// - Without `splitExternalLocalOriginErrors`, local-origin failures count as the status Envoy maps
//   them to: connect failure and reset as 503, timeout as 504 — so they count as 5xx and as
//   gateway errors. With it, they feed their own counter; an answer from the endpoint (any
//   status) proves the connection worked and resets that counter, and a reset or timeout after
//   connecting counts as one failure after that reset (Envoy reports "connect success" when the
//   pool hands out the stream, before the failure).
// - Ejection time: `baseEjectionTime × multiplier`, capped at `max(300s, baseEjectionTime)`
//   (Envoy's max_ejection_time default; Istio does not expose it). The multiplier goes up by one
//   per ejection while `multiplier × base < max + base`, and down by one at each sweep for an
//   endpoint that is not ejected and was un-ejected at least one `interval` ago.
// - Ejected endpoints come back only at a sweep (the `interval` timer) once their time is up —
//   no probe — with all their counters reset.
// - `maxEjectionPercent` (default 10; Istio treats 0 as unset): an ejection happens only if
//   `100 × (ejected + 1) / endpoints ≤ maxEjectionPercent` (Envoy ≥ 1.28,
//   `check_mep_on_first_eject`). Envoy's `always_eject_one_host` (1.31+) also allows the first
//   ejection whatever the percentage; Istio does not set it, so it is off unless the config asks.
// - `minHealthPercent` is Envoy's panic threshold (Istio always sets it; default 0 = off): while
//   fewer than that percentage of endpoints are un-ejected, balance over all of them.

import type { Clock } from '../../core/clock.ts';
import type { ErrorCode } from '../../core/errors.ts';
import { checkInt } from '../../core/config-fields.ts';
import type { OutlierConfig } from '../../wire/resilience.ts';

export type { OutlierConfig } from '../../wire/resilience.ts';

// ---- wire config ----------------------------------------------------------------------------
// The config arrives filled in (src/translate/resilience.ts parses Istio's fields).

const UINT32_MAX = 4294967295;

/** Checks a config that came over the wire; throws (the proxy NACKs) when it cannot be used. */
export function checkOutlierConfig(c: OutlierConfig): void {
  const what = 'outlier detection';
  checkInt(`${what}: consecutive5xx`, c.consecutive5xx, 0, UINT32_MAX);
  checkInt(`${what}: consecutiveGatewayErrors`, c.consecutiveGatewayErrors, 0, UINT32_MAX);
  checkInt(`${what}: consecutiveLocalOriginFailures`, c.consecutiveLocalOriginFailures, 0, UINT32_MAX);
  checkInt(`${what}: intervalMs`, c.intervalMs, 1, Number.MAX_SAFE_INTEGER);
  checkInt(`${what}: baseEjectionTimeMs`, c.baseEjectionTimeMs, 1, Number.MAX_SAFE_INTEGER);
  checkInt(`${what}: maxEjectionTimeMs`, c.maxEjectionTimeMs, c.baseEjectionTimeMs, Number.MAX_SAFE_INTEGER);
  checkInt(`${what}: maxEjectionPercent`, c.maxEjectionPercent, 0, 100);
  checkInt(`${what}: minHealthPercent`, c.minHealthPercent, 0, 100);
  if (typeof c.splitExternalLocalOriginErrors !== 'boolean' || typeof c.alwaysEjectOneHost !== 'boolean') {
    throw new Error(`${what}: splitExternalLocalOriginErrors and alwaysEjectOneHost must be booleans`);
  }
  for (const s of c.errorStatusCodes ?? []) checkInt(`${what}: errorStatusCodes`, s, 100, 599);
}

// ---- runtime --------------------------------------------------------------------------------

/**
 * How one try of a request ended, as the detector sees it. `response`: the endpoint answered
 * (its status). `local`: no answer, or an answer cut mid-body — the mesh's error code says why.
 * Only the upstream's local-origin codes count (connect failure, reset, timeout, the idle
 * timeout of a stream); others (the client left, no healthy upstream) say nothing about the
 * endpoint and are ignored. A pipeline's `TryResult` fits as is.
 */
export type OutlierOutcome = { kind: 'response'; status: number } | { kind: 'local'; code: ErrorCode };

/** Why an endpoint was ejected, in Envoy's stat names (`ejections_enforced_<reason>`). */
export type EjectionReason = 'consecutive_5xx' | 'consecutive_gateway_failure' | 'consecutive_local_origin_failure';

/** One ejected endpoint, for metrics and `weft status`. Times are on the detector's clock. */
export interface Ejection {
  endpoint: string;
  reason: EjectionReason;
  /** When it was ejected. */
  since: number;
  /** When its ejection time is up; it returns at the first sweep from then on. */
  until: number;
  /** How many times it has been ejected so far, this one included. */
  times: number;
}

/** Counters in Envoy's terms (`outlier_detection.*`), for metrics. */
export interface OutlierStats {
  ejectionsActive: number;
  /** Thresholds reached, by reason (`ejections_detected_*`). */
  detected: Record<EjectionReason, number>;
  /** Ejections that happened, by reason (`ejections_enforced_*`). */
  enforced: Record<EjectionReason, number>;
  /** Ejections refused by maxEjectionPercent (`ejections_overflow`). */
  overflow: number;
}

interface Monitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocal: number;
  /** The ejection-time multiplier (Envoy's eject_time_backoff). */
  multiplier: number;
  times: number;
  ejected?: { reason: EjectionReason; since: number };
  lastUnejectedAt?: number;
}

const reasons = (): Record<EjectionReason, number> => ({
  consecutive_5xx: 0,
  consecutive_gateway_failure: 0,
  consecutive_local_origin_failure: 0,
});

/**
 * The outlier detector of one cluster in one proxy. Feed it every try's outcome with `record`
 * (ejection happens there, inline); call `sweep` every `config.intervalMs`; ask `usable` which
 * endpoints to balance over. It knows the cluster's endpoints (`setEndpoints`), because the
 * ejection percentage is of all of them, and outcomes for endpoints not in the cluster are
 * ignored. Keep one per cluster for the proxy's life; as in Envoy, a changed config means a new
 * detector (and fresh counts).
 */
export class OutlierDetector {
  readonly config: Readonly<OutlierConfig>;
  private readonly clock: Clock;
  private readonly monitors = new Map<string, Monitor>();
  private readonly errorStatuses: ReadonlySet<number> | undefined;
  private active = 0;
  private readonly counters = { detected: reasons(), enforced: reasons(), overflow: 0 };

  constructor(config: OutlierConfig, clock: Clock, endpoints: Iterable<string> = []) {
    checkOutlierConfig(config);
    this.config = Object.freeze({ ...config });
    this.clock = clock;
    this.errorStatuses = config.errorStatusCodes ? new Set(config.errorStatusCodes) : undefined;
    this.setEndpoints(endpoints);
  }

  /**
   * The cluster's endpoints now. New ones start with clean counts; ones that left are forgotten
   * (an ejected one no longer counts as ejected), so if they come back they start afresh.
   */
  setEndpoints(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const [key, m] of this.monitors) {
      if (keep.has(key)) continue;
      if (m.ejected) this.active--;
      this.monitors.delete(key);
    }
    for (const key of keep) {
      if (!this.monitors.has(key)) this.monitors.set(key, { consecutive5xx: 0, consecutiveGateway: 0, consecutiveLocal: 0, multiplier: 0, times: 0 });
    }
  }

  /**
   * One try's outcome for `endpoint`. Returns the ejection it caused, if any. Outcomes keep
   * counting while an endpoint is ejected (requests already in flight), but a threshold reached
   * then changes nothing; its counters are reset when it comes back.
   */
  record(endpoint: string, outcome: OutlierOutcome): Ejection | undefined {
    const m = this.monitors.get(endpoint);
    if (!m) return undefined;
    if (outcome.kind === 'local') {
      const failure = localFailure(outcome.code);
      if (failure === undefined) return undefined;
      if (this.config.splitExternalLocalOriginErrors) {
        // A reset or timeout happened on a connection that had been handed out: Envoy recorded
        // the connect success (resetting the count) before this failure.
        if (failure !== 'connect') m.consecutiveLocal = 0;
        return this.localOriginFailure(endpoint, m);
      }
      // Envoy maps them to a status: always errors, whatever outlierDetectionHttpErrorCodes says.
      return this.httpStatus(endpoint, m, failure === 'timeout' ? 504 : 503, true);
    }
    if (this.config.splitExternalLocalOriginErrors) m.consecutiveLocal = 0;
    const s = outcome.status;
    return this.httpStatus(endpoint, m, s, this.errorStatuses ? this.errorStatuses.has(s) : s >= 500 && s <= 599);
  }

  /**
   * The `interval` timer's work: return endpoints whose ejection time is up, and lower the
   * multiplier of endpoints that have stayed in for at least an interval. Returns the endpoints
   * that came back.
   */
  sweep(now: number = this.clock.now()): string[] {
    const back: string[] = [];
    for (const [key, m] of this.monitors) {
      if (m.ejected && now - m.ejected.since >= this.ejectionTime(m)) {
        m.ejected = undefined;
        this.active--;
        // Fresh counts, so a few errors right after coming back do not eject it again.
        m.consecutive5xx = m.consecutiveGateway = m.consecutiveLocal = 0;
        m.lastUnejectedAt = now;
        back.push(key);
      }
    }
    for (const m of this.monitors.values()) {
      if (!m.ejected && m.lastUnejectedAt !== undefined && now - m.lastUnejectedAt >= this.config.intervalMs && m.multiplier > 0) m.multiplier--;
    }
    return back;
  }

  isEjected(endpoint: string): boolean {
    return this.monitors.get(endpoint)?.ejected !== undefined;
  }

  /** Every ejected endpoint: why, since and until when. */
  ejections(): Ejection[] {
    const out: Ejection[] = [];
    for (const [endpoint, m] of this.monitors) {
      if (m.ejected) out.push({ endpoint, reason: m.ejected.reason, since: m.ejected.since, until: m.ejected.since + this.ejectionTime(m), times: m.times });
    }
    return out;
  }

  stats(): OutlierStats {
    return { ejectionsActive: this.active, detected: { ...this.counters.detected }, enforced: { ...this.counters.enforced }, overflow: this.counters.overflow };
  }

  /**
   * The endpoints to balance over: those not ejected — or, in panic (fewer than
   * `minHealthPercent` % of them are in), all of them, as Envoy's load balancer does. An empty
   * list with `panic: false` means every endpoint is ejected: answer 503 `UH`.
   */
  usable<T extends { readonly key: string }>(endpoints: readonly T[]): { endpoints: readonly T[]; panic: boolean } {
    if (this.active === 0 || endpoints.length === 0) return { endpoints, panic: false };
    const healthy = endpoints.filter((e) => !this.isEjected(e.key));
    if (100 * healthy.length / endpoints.length < this.config.minHealthPercent) return { endpoints, panic: true };
    return { endpoints: healthy.length === endpoints.length ? endpoints : healthy, panic: false };
  }

  // ---- internals ------------------------------------------------------------------------------

  private ejectionTime(m: Monitor): number {
    return Math.min(this.config.baseEjectionTimeMs * m.multiplier, this.config.maxEjectionTimeMs);
  }

  private httpStatus(endpoint: string, m: Monitor, status: number, error: boolean): Ejection | undefined {
    if (!error) {
      m.consecutive5xx = 0;
      m.consecutiveGateway = 0;
      return undefined;
    }
    let ejection: Ejection | undefined;
    if (status === 502 || status === 503 || status === 504) {
      if (++m.consecutiveGateway === this.config.consecutiveGatewayErrors) {
        ejection = this.thresholdReached(endpoint, m, 'consecutive_gateway_failure');
      }
    } else {
      m.consecutiveGateway = 0;
    }
    if (++m.consecutive5xx === this.config.consecutive5xx) {
      ejection = this.thresholdReached(endpoint, m, 'consecutive_5xx') ?? ejection;
    }
    return ejection;
  }

  private localOriginFailure(endpoint: string, m: Monitor): Ejection | undefined {
    if (++m.consecutiveLocal === this.config.consecutiveLocalOriginFailures) {
      return this.thresholdReached(endpoint, m, 'consecutive_local_origin_failure');
    }
    return undefined;
  }

  private thresholdReached(endpoint: string, m: Monitor, reason: EjectionReason): Ejection | undefined {
    // Already out: nothing to do, and (as in Envoy) the counter is left as it is.
    if (m.ejected) return undefined;
    this.counters.detected[reason]++;
    const ejection = this.eject(endpoint, m, reason);
    if (reason === 'consecutive_5xx') m.consecutive5xx = 0;
    else if (reason === 'consecutive_gateway_failure') m.consecutiveGateway = 0;
    else m.consecutiveLocal = 0;
    return ejection;
  }

  private eject(endpoint: string, m: Monitor, reason: EjectionReason): Ejection | undefined {
    const { maxEjectionPercent, alwaysEjectOneHost, baseEjectionTimeMs, maxEjectionTimeMs } = this.config;
    const allowed = (100 * (this.active + 1)) / this.monitors.size <= maxEjectionPercent || (alwaysEjectOneHost && this.active === 0);
    if (!allowed) {
      this.counters.overflow++;
      return undefined;
    }
    const now = this.clock.now();
    this.active++;
    this.counters.enforced[reason]++;
    m.times++;
    m.ejected = { reason, since: now };
    if (m.multiplier * baseEjectionTimeMs < maxEjectionTimeMs + baseEjectionTimeMs) m.multiplier++;
    return { endpoint, reason, since: now, until: now + this.ejectionTime(m), times: m.times };
  }
}

/** Local-origin failures, in Envoy's terms; undefined for codes that are not the endpoint's doing. */
function localFailure(code: ErrorCode): 'connect' | 'reset' | 'timeout' | undefined {
  switch (code) {
    case 'UPSTREAM_CONNECT_FAILURE':
      return 'connect';
    case 'UPSTREAM_RESET':
    // A refused stream too: Envoy's router records every upstream reset as a local-origin failure.
    case 'UPSTREAM_REFUSED_STREAM':
      return 'reset';
    case 'UPSTREAM_TIMEOUT':
    // A body gone quiet past `weft.dev/idle-timeout`: Envoy's per_try_idle_timeout, a LocalOriginTimeout.
    case 'STREAM_IDLE_TIMEOUT':
      return 'timeout';
    default:
      return undefined;
  }
}
