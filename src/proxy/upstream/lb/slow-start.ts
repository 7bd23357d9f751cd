// Slow start (Istio's `warmup`): a decorator that ramps the weight of newly joined endpoints, for ROUND_ROBIN and LEAST_REQUEST.

// Envoy's formula (arch_overview/upstream/load_balancing/slow_start): while an endpoint is inside
// its window,
//
//   weight' = weight × max(minimumPercent / 100, timeFactor ^ (1 / aggression))
//   timeFactor = max(elapsed, 1 ms) / window
//
// and afterwards plain `weight`. The window starts when the endpoint joins the cluster; Envoy
// starts it for the cluster's first endpoints too, when its balancer first sees them, so those
// ramp together (their shares do not change) and only an endpoint that joins later gets less
// than its share. Envoy also restarts the window when active health checking brings a host
// back; Weft has no active health checks, and a replica that restarts leaves the cluster and
// joins it again, which restarts its window the same way.
//
// The balancers read weights when they are built, so this decorator rebuilds the inner balancer
// over stand-ins carrying the ramped weights, at most REWEIGHS_PER_WINDOW times per window (Envoy
// recomputes a host's weight each time it is picked; with a linear ramp, a step of 1 % of the
// window keeps every weight within 1 % of the full weight of its exact value, for one O(n)
// rebuild per step rather than per pick). Once nobody is warming it hands over to the balancer built over the real endpoints.

import type { Balancer, BalancerDeps, LbEndpoint, Pick } from './balancer.ts';
import { numberSetting, pickResults } from './common.ts';

export interface SlowStartConfig {
  /** How long an endpoint ramps after it joins, in milliseconds (> 0). */
  readonly windowMs: number;
  /** The floor on the ramp factor, as a fraction: Istio's `minimumPercent` / 100. */
  readonly minWeight: number;
  /** > 0; 1 is linear, above 1 ramps faster early on, below 1 slower. */
  readonly aggression: number;
}

/** Builds a balancer for an endpoint list (LbPolicy.build's shape). */
export type BuildBalancer = (endpoints: readonly LbEndpoint[], deps: BalancerDeps) => Balancer;

const REWEIGHS_PER_WINDOW = 100;

/** Checks warmup settings as they came over the wire; throws with a message fit for a NACK. */
export function parseSlowStartConfig(settings: unknown): SlowStartConfig {
  const windowMs = numberSetting(settings, 'durationMs', 'warmup');
  const minimumPercent = numberSetting(settings, 'minimumPercent', 'warmup') ?? 10;
  const aggression = numberSetting(settings, 'aggression', 'warmup') ?? 1;
  if (windowMs === undefined || !Number.isFinite(windowMs) || windowMs <= 0) {
    throw new Error(`warmup: durationMs must be a finite number > 0, got ${windowMs}`);
  }
  if (!(minimumPercent >= 0 && minimumPercent <= 100)) {
    throw new Error(`warmup: minimumPercent must be from 0 to 100, got ${minimumPercent}`);
  }
  if (!Number.isFinite(aggression) || aggression <= 0) {
    throw new Error(`warmup: aggression must be a finite number > 0, got ${aggression}`);
  }
  return Object.freeze({ windowMs, minWeight: minimumPercent / 100, aggression });
}

/** The factor slow start multiplies an endpoint's weight by, `elapsedMs` after it joined: (0, 1]. */
export function slowStartFactor(elapsedMs: number, config: SlowStartConfig): number {
  if (elapsedMs >= config.windowMs) return 1;
  const time = Math.max(elapsedMs, 1) / config.windowMs;
  const ramp = config.aggression === 1 ? time : time ** (1 / config.aggression);
  return Math.max(ramp, config.minWeight);
}

/**
 * Wraps a balancer builder so that endpoints inside their window (per `joinedAt` and the deps'
 * clock) get ramped weights. Endpoints without `joinedAt` count as warm. Picks always return the
 * real endpoint objects; the real endpoints are never written to.
 */
export function withSlowStart(build: BuildBalancer, config: SlowStartConfig): BuildBalancer {
  return (endpoints, deps) => {
    const plain = build(endpoints, deps);
    let warmUntil = -Infinity;
    for (const e of endpoints) {
      if (e.joinedAt !== undefined && e.weight > 0) warmUntil = Math.max(warmUntil, e.joinedAt + config.windowMs);
    }
    const { clock } = deps;
    if (!(clock.now() < warmUntil)) return plain;

    // The inner balancer is built over stand-ins with the ramped weights; `active` reads through,
    // so least-request sees live load. Its picks are mapped back to the real endpoints.
    const standIns = endpoints.map((e) => ({
      key: e.key,
      weight: e.weight,
      get active(): number {
        return e.active;
      },
      set active(v: number) {
        e.active = v;
      },
    }));
    const results = pickResults(endpoints);
    const real = new Map<LbEndpoint, Pick>(standIns.map((s, i) => [s, results[i]!]));
    const step = config.windowMs / REWEIGHS_PER_WINDOW;
    let current = plain;
    let nextReweigh = -Infinity;

    const reweigh = (now: number): void => {
      if (now >= warmUntil) {
        current = plain;
        nextReweigh = Infinity;
        return;
      }
      // When every endpoint has the same factor the ramped weights are the plain ones scaled, so
      // the shares are the same: keep the plain balancer (and its place in its cycle).
      let uniform = true;
      let first: number | undefined;
      for (let i = 0; i < endpoints.length; i++) {
        const e = endpoints[i]!;
        const factor = e.joinedAt === undefined ? 1 : slowStartFactor(now - e.joinedAt, config);
        standIns[i]!.weight = e.weight * factor;
        if (!(e.weight > 0)) continue;
        if (first === undefined) first = factor;
        else if (factor !== first) uniform = false;
      }
      current = uniform ? plain : build(standIns, deps);
      nextReweigh = now + step;
    };
    reweigh(clock.now());

    return {
      pick(ctx): Pick {
        const now = clock.now();
        if (now >= nextReweigh) reweigh(now);
        const result = current.pick(ctx);
        if (current === plain || result.kind !== 'picked') return result;
        return real.get(result.endpoint)!;
      },
    };
  };
}
