// ROUND_ROBIN: weighted round robin on an earliest-deadline-first schedule; plain rotation when weights are equal.

import type { Balancer, BalancerFactory, Pick } from './balancer.ts';
import { EdfSchedule } from './edf.ts';
import { eligible, equalWeights, maxWeight, NO_HEALTHY_UPSTREAM, pickResults } from './common.ts';

/**
 * Every endpoint is picked in proportion to its weight, and picks of a heavy endpoint are spread
 * through the cycle (3:1 gives a a b a a a b a …, never a burst of all the a's). The schedule
 * starts at a random point of its cycle, so a fleet of proxies that all get the same endpoint
 * list at once does not send its first requests to the same endpoint in lockstep.
 */
export const roundRobin: BalancerFactory = (endpoints, _config, { random }): Balancer => {
  const live = eligible(endpoints);
  const n = live.length;
  if (n === 0) return { pick: () => NO_HEALTHY_UPSTREAM };
  const results = pickResults(live);

  if (equalWeights(live)) {
    let next = random.int(n);
    return {
      pick(): Pick {
        const result = results[next]!;
        next = next + 1 === n ? 0 : next + 1;
        return result;
      },
    };
  }

  // Periods are relative to the heaviest endpoint (period 1), so the virtual clock advances by
  // about one unit per cycle of the heaviest endpoint whatever the absolute weights are.
  const heaviest = maxWeight(live);
  const period = live.map((e) => heaviest / e.weight);
  // One random offset, with endpoints spaced evenly after it: the first cycle already interleaves
  // endpoints instead of starting them all at deadline 0.
  const offset = random.next();
  const schedule = new EdfSchedule(period.map((p, i) => (((i / n + offset) % 1) * p)));
  return {
    pick(): Pick {
      const i = schedule.peek();
      schedule.advance(period[i]!);
      return results[i]!;
    },
  };
};
