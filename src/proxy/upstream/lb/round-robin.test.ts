// ROUND_ROBIN cases beyond conformance: rotation, random start, smooth weighted interleaving.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { roundRobin } from './round-robin.ts';
import { deps, endpoints, near, picked } from './testing.ts';

const keys = (b: ReturnType<typeof roundRobin>, n: number): string[] =>
  Array.from({ length: n }, () => picked(b).key.slice(7, 8));

describe('round robin', () => {
  it('rotates through equal weights in list order, from a random start', () => {
    const eps = endpoints([1, 1, 1, 1]);
    const seq = keys(roundRobin(eps, null, deps(1)), 12).join('');
    const start = Number(seq[0]) - 1;
    const expected = Array.from({ length: 12 }, (_, i) => String(((start + i) % 4) + 1)).join('');
    assert.equal(seq, expected);
  });

  it('starts different proxies at different offsets', () => {
    const eps = endpoints([1, 1, 1, 1]);
    const starts = new Set(Array.from({ length: 20 }, (_, seed) => picked(roundRobin(eps, null, deps(seed))).key));
    assert.ok(starts.size >= 3, `only ${starts.size} distinct starting endpoints over 20 seeds`);
  });

  it('interleaves weighted picks smoothly: every 4 picks of 3:1 hold exactly one of the light endpoint', () => {
    for (let seed = 0; seed < 10; seed++) {
      const seq = keys(roundRobin(endpoints([3, 1]), null, deps(seed)), 400);
      for (let i = 0; i + 4 <= seq.length; i++) {
        assert.equal(seq.slice(i, i + 4).filter((k) => k === '2').length, 1, `seed ${seed}, window at ${i}: ${seq.join('')}`);
      }
    }
  });

  it('gives each endpoint its weight per cycle, within one pick', () => {
    for (let seed = 0; seed < 20; seed++) {
      const seq = keys(roundRobin(endpoints([5, 3, 2, 0]), null, deps(seed)), 1000);
      const count = (k: string) => seq.filter((x) => x === k).length;
      [500, 300, 200, 0].forEach((expected, i) => near(count(String(i + 1)), expected, 1, `seed ${seed}, endpoint ${i + 1}`));
    }
  });

  it('handles weights that differ by orders of magnitude', () => {
    const eps = endpoints([10_000, 1]);
    const b = roundRobin(eps, null, deps(1));
    let light = 0;
    for (let i = 0; i < 50_005; i++) if (picked(b) === eps[1]) light++;
    assert.ok(light >= 4 && light <= 6, `light endpoint picked ${light} times`);
  });
});
