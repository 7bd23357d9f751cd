// hash53: golden values, spread, avalanche and seed independence.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hash53 } from './hash.ts';

describe('hash53', () => {
  it('is stable: these values must never change (they place every hashed key in the mesh)', () => {
    assert.deepEqual(
      ['', 'a', '10.0.0.1:8080', 'user-42', 'ключ'].map((s) => hash53(s)),
      [7679343617436154, 8186456152170224, 6623543048901890, 2523410921629471, 6594512099050123],
    );
    assert.equal(hash53('10.0.0.1:8080', 7), 6495562031567190);
  });

  it('returns integers in [0, 2^53)', () => {
    for (let i = 0; i < 1000; i++) {
      const h = hash53(`k${i}`, i);
      assert.ok(Number.isSafeInteger(h) && h >= 0, String(h));
    }
  });

  it('spreads similar keys evenly over buckets (chi-squared)', () => {
    const buckets = 256;
    const keys = 100_000;
    for (const bucketOf of [(h: number) => Math.floor(h / 2 ** 45), (h: number) => h % buckets]) {
      const counts = new Array<number>(buckets).fill(0);
      for (let i = 0; i < keys; i++) counts[bucketOf(hash53(`10.0.${i >> 8}.${i & 255}:8080`))]!++;
      const expected = keys / buckets;
      const chi2 = counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
      // 255 degrees of freedom: the 99.9th percentile is about 330.
      assert.ok(chi2 < 330, `chi-squared ${chi2.toFixed(0)}`);
    }
  });

  it('avalanches: one flipped input bit flips about half the output bits', () => {
    let flipped = 0;
    const trials = 5000;
    for (let i = 0; i < trials; i++) {
      const s = `session-${i}`;
      const j = i % s.length;
      const t = s.slice(0, j) + String.fromCharCode(s.charCodeAt(j) ^ (1 << i % 7)) + s.slice(j + 1);
      let x = hash53(s);
      let y = hash53(t);
      for (let bit = 0; bit < 53; bit++) {
        if (x % 2 !== y % 2) flipped++;
        x = Math.floor(x / 2);
        y = Math.floor(y / 2);
      }
    }
    const mean = flipped / trials;
    assert.ok(mean > 25.5 && mean < 27.5, `mean bits flipped ${mean.toFixed(2)} of 53`);
  });

  it('gives independent hashes for different seeds', () => {
    let same = 0;
    for (let i = 0; i < 10_000; i++) if (hash53(`k${i}`, 1) % 2 === hash53(`k${i}`, 2) % 2) same++;
    assert.ok(Math.abs(same / 10_000 - 0.5) < 0.02, `low bits agree ${same} times in 10000`);
  });
});

