// LEAST_REQUEST (Istio's default): power of two choices on active requests; weighted EDF when weights differ.

import type { Balancer, BalancerFactory, Pick } from './balancer.ts';
import { EdfSchedule } from './edf.ts';
import { eligible, equalWeights, maxWeight, NO_HEALTHY_UPSTREAM, numberSetting, pickResults } from './common.ts';

export interface LeastRequestConfig {
  /**
   * How hard active requests push an endpoint's effective weight down when weights differ:
   * `weight / (active + 1) ^ activeRequestBias`. 1.0 (Envoy's default) is plain
   * weight-per-request; 0 ignores load and behaves as weighted round robin.
   */
  activeRequestBias: number;
}

export const DEFAULT_LEAST_REQUEST: LeastRequestConfig = Object.freeze({ activeRequestBias: 1.0 });

/** Validates least-request settings; throws on a bias that would invert or break the weighting. */
export function parseLeastRequestConfig(settings: unknown): LeastRequestConfig {
  const bias = numberSetting(settings, 'activeRequestBias', 'LEAST_REQUEST') ?? DEFAULT_LEAST_REQUEST.activeRequestBias;
  if (!Number.isFinite(bias) || bias < 0) {
    throw new Error(`LEAST_REQUEST: activeRequestBias must be a finite number >= 0, got ${bias}`);
  }
  return Object.freeze({ activeRequestBias: bias });
}

/**
 * Equal weights: pick two distinct endpoints at random and send to the one with fewer requests in
 * flight (ties go to the first, itself random). Comparing two random endpoints instead of scanning
 * all of them is O(1), nearly as good as the full scan, and — unlike "always the least loaded" —
 * does not stampede many proxies onto the same idle endpoint. An endpoint busier than all others
 * never wins a comparison, so it drains.
 *
 * Unequal weights: "fewer requests" alone would ignore the weights, so (as Envoy does) endpoints
 * go on an earliest-deadline-first schedule whose weight is `weight / (active + 1) ^ bias`,
 * recomputed each time an endpoint is picked: busy endpoints are rescheduled further out, idle
 * ones sooner. The weight is read when the endpoint is (re)scheduled, so an endpoint's load
 * change takes effect from its next pick on.
 */
export const leastRequest: BalancerFactory<LeastRequestConfig> = (endpoints, config, { random }): Balancer => {
  const live = eligible(endpoints);
  const n = live.length;
  if (n === 0) return { pick: () => NO_HEALTHY_UPSTREAM };
  const results = pickResults(live);
  if (n === 1) {
    const only = results[0]!;
    return { pick: () => only };
  }

  if (equalWeights(live)) {
    return {
      pick(): Pick {
        const first = random.int(n);
        // A second index drawn from the other n-1 endpoints: distinct without a retry loop.
        let second = random.int(n - 1);
        if (second >= first) second++;
        return live[second]!.active < live[first]!.active ? results[second]! : results[first]!;
      },
    };
  }

  const bias = config.activeRequestBias;
  const heaviest = maxWeight(live);
  const relative = live.map((e) => e.weight / heaviest);
  // All endpoints start idle-weighted at a random phase, as in round robin.
  const offset = random.next();
  const schedule = new EdfSchedule(relative.map((w, i) => ((i / n + offset) % 1) / w));
  return {
    pick(): Pick {
      const i = schedule.peek();
      // `active + 1` counts the request being placed now, and keeps an idle endpoint finite.
      const load = live[i]!.active + 1;
      const penalty = bias === 1 ? load : bias === 0 ? 1 : load ** bias;
      schedule.advance(penalty / relative[i]!);
      return results[i]!;
    },
  };
};
