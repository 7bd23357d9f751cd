// Retry budget (Istio's `trafficPolicy.retryBudget`, Envoy's circuit-breaker `retry_budget`): how many retries may be in flight, as a share of the requests.
//
// Envoy (source/common/upstream/resource_manager_impl.h, RetryBudgetImpl::max()): the limit on
// retries in flight is `max(⌊percent / 100 × requests⌋, minRetryConcurrency)`, where `requests`
// is the requests active plus pending now, or — with a non-zero `budgetInterval` — the requests
// started within that interval (Envoy PR #44147: a window of ten slots). When a cluster has a
// budget, it replaces `http.maxRetries` (circuit_breaker.proto). Defaults, as Istio documents
// them: 20 % and 3.
//
// Note: Istio's translation (cluster_traffic_policy.go applyRetryBudget) writes the default as
// `Percent{value: 0.2}`, which Envoy reads as 0.2 %, not the 20 % both the Istio and Envoy docs
// state. Weft follows the documented 20 %.

import type { Clock } from '../../core/clock.ts';
import { checkInt, checkNumber } from '../../core/config-fields.ts';
import type { RetryBudgetConfig } from '../../wire/resilience.ts';

export type { RetryBudgetConfig } from '../../wire/resilience.ts';

export function checkRetryBudgetConfig(c: RetryBudgetConfig): void {
  checkNumber('retry budget: percent', c.percent, 0, 100);
  checkInt('retry budget: minRetryConcurrency', c.minRetryConcurrency, 0, 4294967295);
  checkInt('retry budget: budgetIntervalMs', c.budgetIntervalMs, 0, Number.MAX_SAFE_INTEGER);
}

/** Envoy's arithmetic: the percentage of `requests`, rounded down, but at least the minimum. */
export function retryBudgetLimit(config: RetryBudgetConfig, requests: number): number {
  return Math.max(Math.floor((config.percent / 100) * requests), config.minRetryConcurrency);
}

const SLOTS = 10;

/**
 * The budget of one cluster in one proxy. Without an interval it is stateless arithmetic over
 * the requests in flight; with one, it remembers how many requests started in each tenth of the
 * window (call `onRequest` for every upstream request, retries included, as Envoy counts them).
 */
export class RetryBudget {
  readonly config: Readonly<RetryBudgetConfig>;
  private readonly clock: Clock;
  private readonly slotMs: number;
  /** Ring of [slot number, requests started in it]. */
  private readonly slots: Array<[number, number]> = [];

  constructor(config: RetryBudgetConfig, clock: Clock) {
    checkRetryBudgetConfig(config);
    this.config = Object.freeze({ ...config });
    this.clock = clock;
    this.slotMs = config.budgetIntervalMs / SLOTS;
  }

  /** A request started (a first try or a retry). Only matters with a budget interval. */
  onRequest(now: number = this.clock.now()): void {
    if (this.config.budgetIntervalMs === 0) return;
    const slot = Math.floor(now / this.slotMs);
    const i = slot % SLOTS;
    const cell = this.slots[i];
    if (cell && cell[0] === slot) cell[1]++;
    else this.slots[i] = [slot, 1];
  }

  /** Requests started within the window ending now (the current slot and the nine before it). */
  requestsInWindow(now: number = this.clock.now()): number {
    const slot = Math.floor(now / this.slotMs);
    let total = 0;
    for (const cell of this.slots) if (cell && cell[0] > slot - SLOTS && cell[0] <= slot) total += cell[1];
    return total;
  }

  /** How many retries may be in flight, given the requests active and pending right now. */
  limit(activeAndPending: number, now: number = this.clock.now()): number {
    const requests = this.config.budgetIntervalMs === 0 ? activeAndPending : this.requestsInWindow(now);
    return retryBudgetLimit(this.config, requests);
  }
}
