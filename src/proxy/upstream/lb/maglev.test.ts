// MAGLEV cases beyond conformance: stable keys, disruption on churn, table balance, config.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isPrime, maglev, MAX_MAGLEV_TABLE_SIZE, parseMaglevConfig } from './maglev.ts';
import { deps, endpoints, movement, near, picked, share, tally } from './testing.ts';

const KEYS = 20_000;
const table = (eps: ReturnType<typeof endpoints>, seed = 1, tableSize = 65537) => maglev(eps, { tableSize }, deps(seed));

describe('maglev', () => {
  it('sends the same key to the same endpoint across rebuilds, seeds and endpoint order', () => {
    const eps = endpoints([1, 2, 1, 3, 1]);
    const a = table(eps, 1);
    const b = table([...eps].reverse(), 99);
    for (let i = 0; i < 2000; i++) {
      const ctx = { hashKey: `user-${i}` };
      assert.equal(picked(a, ctx), picked(b, ctx));
    }
  });

  // The Maglev paper trades a little extra disruption for near-perfect balance: a change moves
  // about 1/N of keys plus a small cascade between survivors.
  for (const n of [3, 5, 10, 20]) {
    it(`removing one of ${n} endpoints moves about 1/${n} of keys, few between survivors`, () => {
      const eps = endpoints(new Array(n).fill(1));
      const removed = eps[1]!;
      const { fraction, moves } = movement(table(eps), table(eps.filter((e) => e !== removed)), KEYS);
      assert.ok(fraction <= 1.5 / n, `moved ${fraction.toFixed(3)} of keys, more than 1.5/${n}`);
      assert.ok(fraction >= 0.5 / n, `moved ${fraction.toFixed(3)} of keys, suspiciously few`);
      const between = moves.filter((m) => m.from !== removed).length / KEYS;
      assert.ok(between <= 0.02, `${(between * 100).toFixed(2)} % of keys moved between surviving endpoints`);
    });

    it(`adding an endpoint to ${n} moves about 1/${n + 1} of keys, mostly to the new one`, () => {
      const eps = endpoints(new Array(n + 1).fill(1));
      const added = eps[n]!;
      const { fraction, moves } = movement(table(eps.slice(0, n)), table(eps), KEYS);
      assert.ok(fraction <= 1.5 / (n + 1), `moved ${fraction.toFixed(3)} of keys, more than 1.5/${n + 1}`);
      assert.ok(fraction >= 0.5 / (n + 1), `moved ${fraction.toFixed(3)} of keys, suspiciously few`);
      const between = moves.filter((m) => m.to !== added).length / KEYS;
      assert.ok(between <= 0.02, `${(between * 100).toFixed(2)} % of keys moved between existing endpoints`);
    });
  }

  it('splits table slots almost exactly (random slots stand in for keys)', () => {
    const eps = endpoints(new Array(7).fill(1));
    const counts = tally(table(eps), 70_000);
    for (const e of eps) near(share(counts, e, 70_000), 1 / 7, 0.01, e.key);
  });

  it('builds with a small table and more endpoints than slots', () => {
    const eps = endpoints([1, 1, 1, 1, 1]);
    const counts = tally(table(eps, 1, 3), 300, (i) => `user-${i}`);
    assert.ok(counts.size <= 3);
    for (const e of counts.keys()) assert.ok(eps.includes(e));
  });

  it('splits keys by heavily skewed weights', () => {
    const weights = new Array(300).fill(1);
    weights[0] = 1000;
    const eps = endpoints(weights, '10.1.');
    const counts = tally(table(eps), 20_000);
    near(share(counts, eps[0]!, 20_000), 1000 / 1299, 0.02, 'heavy endpoint');
  });
});

describe('maglev config', () => {
  it('defaults tableSize to 65537 and accepts primes up to 5000011', () => {
    assert.deepEqual(parseMaglevConfig({}), { tableSize: 65537 });
    assert.deepEqual(parseMaglevConfig({ tableSize: 251 }), { tableSize: 251 });
    assert.deepEqual(parseMaglevConfig({ tableSize: MAX_MAGLEV_TABLE_SIZE }), { tableSize: 5_000_011 });
  });

  it('rejects a table size that is not prime', () => {
    for (const bad of [65536, 1000, 9, 4]) {
      assert.throws(() => parseMaglevConfig({ tableSize: bad }), /maglev: tableSize must be prime/);
    }
  });

  it('rejects sizes out of range, fractional or non-numeric', () => {
    for (const bad of [0, 1, -7, 2.5, MAX_MAGLEV_TABLE_SIZE + 2, NaN, '65537']) {
      assert.throws(() => parseMaglevConfig({ tableSize: bad }), /maglev: tableSize must be/);
    }
  });

  it('isPrime', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 9, 25, 65535, 65537, 5_000_011].map(isPrime),
      [false, true, true, false, true, false, false, false, true, true],
    );
  });
});
