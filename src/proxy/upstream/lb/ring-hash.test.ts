// RING_HASH cases beyond conformance: stable keys, minimal disruption on churn, config.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RING_SIZE, parseRingHashConfig, ringHash } from './ring-hash.ts';
import { deps, endpoints, movement, near, picked, share, tally } from './testing.ts';

const KEYS = 20_000;
const ring = (eps: ReturnType<typeof endpoints>, seed = 1, minimumRingSize = 1024) =>
  ringHash(eps, { minimumRingSize }, deps(seed));

describe('ring hash', () => {
  it('sends the same key to the same endpoint across rebuilds, seeds and endpoint order', () => {
    const eps = endpoints([1, 2, 1, 3, 1]);
    const a = ring(eps, 1);
    const b = ring([...eps].reverse(), 99);
    for (let i = 0; i < 2000; i++) {
      const ctx = { hashKey: `user-${i}` };
      assert.equal(picked(a, ctx), picked(b, ctx));
    }
  });

  for (const n of [3, 5, 10, 20]) {
    it(`removing one of ${n} endpoints moves only that endpoint's keys (about 1/${n})`, () => {
      const eps = endpoints(new Array(n).fill(1));
      const removed = eps[1]!;
      const { fraction, moves } = movement(ring(eps), ring(eps.filter((e) => e !== removed)), KEYS);
      assert.ok(fraction <= 1.5 / n, `moved ${fraction.toFixed(3)} of keys, more than 1.5/${n}`);
      assert.ok(fraction >= 0.5 / n, `moved ${fraction.toFixed(3)} of keys, suspiciously few`);
      // Every other endpoint keeps its points, so no key moves between survivors.
      assert.deepEqual(moves.filter((m) => m.from !== removed), []);
    });

    it(`adding an endpoint to ${n} moves about 1/${n + 1} of keys, all to the new one`, () => {
      const eps = endpoints(new Array(n + 1).fill(1));
      const added = eps[n]!;
      const { fraction, moves } = movement(ring(eps.slice(0, n)), ring(eps), KEYS);
      assert.ok(fraction <= 1.5 / (n + 1), `moved ${fraction.toFixed(3)} of keys, more than 1.5/${n + 1}`);
      assert.ok(fraction >= 0.5 / (n + 1), `moved ${fraction.toFixed(3)} of keys, suspiciously few`);
      assert.deepEqual(moves.filter((m) => m.to !== added), []);
    });
  }

  it('balances many endpoints within 10 % at the default ring size', () => {
    const eps = endpoints(new Array(20).fill(1));
    const counts = tally(ring(eps), 100_000, (i) => `user-${i}`);
    for (const e of eps) near(share(counts, e, 100_000), 1 / 20, 0.1 / 20, e.key);
  });

  it('still works with a one-point ring', () => {
    const eps = endpoints([1, 1, 1]);
    const counts = tally(ring(eps, 1, 1), 3000, (i) => `user-${i}`);
    for (const e of counts.keys()) assert.ok(eps.includes(e));
  });

  it('without a hash key picks at random (weighted), not always the same endpoint', () => {
    const eps = endpoints([1, 1]);
    const counts = tally(ring(eps), 2000);
    near(share(counts, eps[0]!, 2000), 0.5, 0.05, 'share without key');
  });

  it('treats an empty hash key as a key', () => {
    const b = ring(endpoints([1, 1, 1, 1]));
    const first = picked(b, { hashKey: '' });
    for (let i = 0; i < 50; i++) assert.equal(picked(b, { hashKey: '' }), first);
  });
});

describe('ring hash config', () => {
  it('defaults minimumRingSize to 1024 and accepts up to 8M', () => {
    assert.deepEqual(parseRingHashConfig({}), { minimumRingSize: 1024 });
    assert.deepEqual(parseRingHashConfig({ minimumRingSize: MAX_RING_SIZE }), { minimumRingSize: 8_388_608 });
  });

  it('rejects sizes below 1, above 8M, fractional or non-numeric', () => {
    for (const bad of [0, -1, 1.5, MAX_RING_SIZE + 1, NaN, '1024']) {
      assert.throws(() => parseRingHashConfig({ minimumRingSize: bad }), /ringHash: minimumRingSize must be/);
    }
  });
});
