// RANDOM: weighted random choice, independent per request.

import type { Balancer, BalancerFactory, Pick } from './balancer.ts';
import { eligible, equalWeights, NO_HEALTHY_UPSTREAM, pickResults } from './common.ts';

/**
 * Each request goes to endpoint i with probability weight_i / Σ weight. No state is kept between
 * picks, so there is no cycle for a fleet of proxies to fall into step with. It is also what
 * PASSTHROUGH does for now (see registry.ts).
 */
export const weightedRandom: BalancerFactory = (endpoints, _config, { random }): Balancer => {
  const live = eligible(endpoints);
  const n = live.length;
  if (n === 0) return { pick: () => NO_HEALTHY_UPSTREAM };
  const results = pickResults(live);
  if (equalWeights(live)) return { pick: () => results[random.int(n)]! };

  // cumulative[i] = Σ weight of endpoints 0..i; a uniform point in [0, total) falls in endpoint
  // i's interval with probability proportional to its weight. Binary search: O(log n).
  const cumulative = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) cumulative[i] = total += live[i]!.weight;
  return {
    pick(): Pick {
      const point = random.next() * total;
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! > point) hi = mid;
        else lo = mid + 1;
      }
      return results[lo]!;
    },
  };
};
