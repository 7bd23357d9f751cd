// Conformance: the one suite every registered load balancer (and each slow-start variant) passes before its own cases.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { LbConfig } from '../../../wire/snapshot.ts';
import type { LbEndpoint } from './balancer.ts';
import { createBalancer, registeredBalancers } from './registry.ts';
import { deps, endpoints, near, picked, share, tally } from './testing.ts';

// A config that selects each registered balancer. The first test fails if a balancer is
// registered without an entry here, so no policy can skip the suite.
const CONFIGS: Record<string, LbConfig> = {
  ROUND_ROBIN: { simple: 'ROUND_ROBIN' },
  LEAST_REQUEST: { simple: 'LEAST_REQUEST' },
  RANDOM: { simple: 'RANDOM' },
  PASSTHROUGH: { simple: 'PASSTHROUGH' },
  RING_HASH: { consistentHash: { key: { header: 'x-session' }, algorithm: { ringHash: { minimumRingSize: 1024 } } } },
  MAGLEV: { consistentHash: { key: { header: 'x-session' }, algorithm: { maglev: { tableSize: 65537 } } } },
};

// Slow start wraps ROUND_ROBIN and LEAST_REQUEST. In these variants every endpoint joined within
// a few milliseconds of the others, half a window ago: their ramp factors differ in the fifth
// decimal, so the decorator balances over its stand-ins, yet the shares are the plain ones.
const WARMUP = { durationMs: 60_000, minimumPercent: 10, aggression: 1 };
const warming = (weights: readonly number[]): LbEndpoint[] =>
  endpoints(weights).map((e, i) => ({ ...e, joinedAt: -30_000 - i * 0.7 }));

interface Variant {
  config: LbConfig;
  /** Makes the endpoint list for a test (with join times, for the slow-start variants). */
  endpoints: (weights: readonly number[]) => LbEndpoint[];
}

const VARIANTS: Record<string, Variant> = {
  ...Object.fromEntries(Object.entries(CONFIGS).map(([name, config]) => [name, { config, endpoints }])),
  'ROUND_ROBIN with warmup, all warming': { config: { simple: 'ROUND_ROBIN', warmup: WARMUP }, endpoints: warming },
  'LEAST_REQUEST with warmup, all warming': { config: { simple: 'LEAST_REQUEST', warmup: WARMUP }, endpoints: warming },
  'ROUND_ROBIN with warmup, window over': {
    config: { simple: 'ROUND_ROBIN', warmup: WARMUP },
    endpoints: (weights) => endpoints(weights).map((e, i) => ({ ...e, joinedAt: -60_000 - i })),
  },
};

const PICKS = 20_000;
// Distinct keys per pick: consistent-hash balancers spread keys, the others ignore them.
const key = (i: number): string => `session-${i}`;

it('has a conformance config for every registered balancer', () => {
  assert.deepEqual(Object.keys(CONFIGS).sort(), registeredBalancers().sort());
});

for (const [name, variant] of Object.entries(VARIANTS)) {
  describe(`${name} conformance`, () => {
    const { config, endpoints } = variant;
    const build = (eps: readonly LbEndpoint[], seed = 1) => createBalancer(config, eps, deps(seed));

    it('spreads picks evenly over equal weights', () => {
      const eps = endpoints([1, 1, 1, 1]);
      const counts = tally(build(eps), PICKS, key);
      for (const e of eps) near(share(counts, e, PICKS), 1 / 4, 0.1 / 4, e.key);
    });

    it('spreads evenly when the request has no hash key', () => {
      const eps = endpoints([1, 1, 1, 1]);
      const counts = tally(build(eps), PICKS);
      for (const e of eps) near(share(counts, e, PICKS), 1 / 4, 0.1 / 4, e.key);
    });

    it('sends about 3:1 to weights 3:1', () => {
      const eps = endpoints([3, 1]);
      near(share(tally(build(eps), PICKS, key), eps[0]!, PICKS), 0.75, 0.03, 'share of the weight-3 endpoint');
      near(share(tally(build(eps), PICKS), eps[0]!, PICKS), 0.75, 0.03, 'same without hash keys');
    });

    it('sends 3:1 within ±3 points over 4000 requests', () => {
      const eps = endpoints([3, 1]);
      near(share(tally(build(eps, 11), 4000, key), eps[0]!, 4000), 0.75, 0.03, 'share of the weight-3 endpoint');
      near(share(tally(build(eps, 12), 4000), eps[0]!, 4000), 0.75, 0.03, 'same without hash keys');
    });

    it('follows mixed weights 5:3:2', () => {
      const eps = endpoints([5, 3, 2]);
      const counts = tally(build(eps), PICKS, key);
      eps.forEach((e, i) => near(share(counts, e, PICKS), [0.5, 0.3, 0.2][i]!, 0.03, e.key));
    });

    it('fails every pick with NO_HEALTHY_UPSTREAM on an empty set', () => {
      const b = build([]);
      for (const ctx of [{}, { hashKey: 'a' }]) {
        assert.deepEqual(b.pick(ctx), { kind: 'fail', code: 'NO_HEALTHY_UPSTREAM' });
      }
    });

    it('always picks a single endpoint', () => {
      const eps = endpoints([1]);
      const b = build(eps);
      for (let i = 0; i < 200; i++) assert.equal(picked(b, i % 2 ? { hashKey: key(i) } : {}), eps[0]);
    });

    it('never picks a zero-weight endpoint', () => {
      const eps = endpoints([1, 0, 2, 0]);
      const counts = tally(build(eps), PICKS, key);
      assert.equal(counts.get(eps[1]!), undefined);
      assert.equal(counts.get(eps[3]!), undefined);
      near(share(counts, eps[2]!, PICKS), 2 / 3, 0.03, 'share of the weight-2 endpoint');
    });

    it('fails when every endpoint has weight zero', () => {
      const b = build(endpoints([0, 0]));
      assert.deepEqual(b.pick({ hashKey: 'a' }), { kind: 'fail', code: 'NO_HEALTHY_UPSTREAM' });
    });

    it('survives churn: a rebuilt set never yields a removed endpoint', () => {
      const eps = endpoints([1, 1, 1, 1, 1]);
      const before = eps.slice(0, 4);
      tally(build(before), 1000, key);

      const removed = eps[3]!;
      const shrunk = before.filter((e) => e !== removed);
      const afterRemove = tally(build(shrunk, 2), PICKS, key);
      assert.equal(afterRemove.get(removed), undefined);
      for (const e of afterRemove.keys()) assert.ok(shrunk.includes(e), `picked ${e.key}, not in the set`);
      for (const e of shrunk) near(share(afterRemove, e, PICKS), 1 / 3, 0.1 / 3, e.key);

      const grown = [...before, eps[4]!];
      const afterAdd = tally(build(grown, 3), PICKS, key);
      for (const e of afterAdd.keys()) assert.ok(grown.includes(e), `picked ${e.key}, not in the set`);
      for (const e of grown) near(share(afterAdd, e, PICKS), 1 / 5, 0.1 / 5, e.key);
    });

    it('is deterministic for a given seed', () => {
      const eps = endpoints([2, 1, 1]);
      const a = build(eps, 7);
      const b = build(eps, 7);
      for (let i = 0; i < 500; i++) {
        const ctx = i % 3 ? { hashKey: key(i) } : {};
        assert.equal(picked(a, ctx), picked(b, ctx));
      }
    });

    it('leaves endpoints as it found them (the pipeline owns `active`)', () => {
      const eps = endpoints([1, 2, 3]);
      eps[1]!.active = 4;
      tally(build(eps), 1000, key);
      assert.deepEqual(
        eps.map((e) => [e.weight, e.active]),
        [[1, 0], [2, 4], [3, 0]],
      );
    });

    if ('consistentHash' in config) {
      it('sends 100 % of a key to one endpoint while the set is stable', () => {
        const eps = endpoints([1, 1, 1, 1, 1]);
        const b = build(eps);
        const keys = 500;
        const home = Array.from({ length: keys }, (_, k) => picked(b, { hashKey: key(k) }));
        // Requests for different keys interleave, as they do on a busy proxy.
        for (let round = 0; round < 40; round++) {
          for (let k = 0; k < keys; k++) assert.equal(picked(b, { hashKey: key(k) }), home[k], `key ${k}, round ${round}`);
        }
        // A rebuild over the same set (a snapshot swap), listed in another order, keeps every key home.
        const rebuilt = build([...eps].reverse(), 99);
        for (let k = 0; k < keys; k++) assert.equal(picked(rebuilt, { hashKey: key(k) }), home[k], `key ${k} after a rebuild`);
        // And keys do spread: every endpoint is home to some.
        assert.equal(new Set(home).size, eps.length);
      });
    }
  });
}
