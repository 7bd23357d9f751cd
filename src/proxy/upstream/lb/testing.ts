// Test helpers for balancers: endpoint lists, seeded deps, and pick tallies.

import assert from 'node:assert/strict';
import { ManualClock } from '../../../core/clock.ts';
import { seededRandom } from '../../../core/random.ts';
import type { Balancer, BalancerDeps, LbEndpoint, PickContext } from './balancer.ts';

/** `weights.length` endpoints with keys 10.0.0.1:8080, 10.0.0.2:8080, … */
export function endpoints(weights: readonly number[], prefix = '10.0.0.'): LbEndpoint[] {
  return weights.map((weight, i) => ({ key: `${prefix}${i + 1}:8080`, weight, active: 0 }));
}

export function deps(seed = 1): BalancerDeps {
  return { random: seededRandom(seed), clock: new ManualClock(0) };
}

/** The endpoint a pick chose; fails the test on a `fail` result. */
export function picked(balancer: Balancer, ctx: PickContext = {}): LbEndpoint {
  const result = balancer.pick(ctx);
  assert.equal(result.kind, 'picked', `expected a pick, got ${JSON.stringify(result)}`);
  return (result as { endpoint: LbEndpoint }).endpoint;
}

/** How often each endpoint is picked over `n` picks; `key(i)` gives pick i's hash key, if any. */
export function tally(balancer: Balancer, n: number, key?: (i: number) => string): Map<LbEndpoint, number> {
  const counts = new Map<LbEndpoint, number>();
  for (let i = 0; i < n; i++) {
    const e = picked(balancer, key ? { hashKey: key(i) } : {});
    counts.set(e, (counts.get(e) ?? 0) + 1);
  }
  return counts;
}

/** Fraction of `n` picks that went to `e`. */
export function share(counts: Map<LbEndpoint, number>, e: LbEndpoint, n: number): number {
  return (counts.get(e) ?? 0) / n;
}

/** Asserts |actual − expected| ≤ tolerance, with a message that shows all three. */
export function near(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual.toFixed(4)} not within ${tolerance} of ${expected.toFixed(4)}`,
  );
}

/** How keys move between two balancers: the fraction that moved, and the moved keys themselves. */
export function movement(
  before: Balancer,
  after: Balancer,
  keys: number,
): { fraction: number; moves: Array<{ from: LbEndpoint; to: LbEndpoint }> } {
  const moves: Array<{ from: LbEndpoint; to: LbEndpoint }> = [];
  for (let i = 0; i < keys; i++) {
    const ctx = { hashKey: `user-${i}` };
    const from = picked(before, ctx);
    const to = picked(after, ctx);
    if (from !== to) moves.push({ from, to });
  }
  return { fraction: moves.length / keys, moves };
}
