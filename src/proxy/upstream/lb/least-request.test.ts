// LEAST_REQUEST cases beyond conformance: preference for idle endpoints, weighted load, bias.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_LEAST_REQUEST, leastRequest, parseLeastRequestConfig } from './least-request.ts';
import { weightedRandom } from './random.ts';
import { deps, endpoints, near, picked, share, tally } from './testing.ts';

const N = 20_000;
const lr = (eps: ReturnType<typeof endpoints>, seed = 1, config = DEFAULT_LEAST_REQUEST) => leastRequest(eps, config, deps(seed));

describe('least request, equal weights (power of two choices)', () => {
  it('prefers idle endpoints', () => {
    const eps = endpoints([1, 1, 1, 1]);
    [5, 5, 5, 0].forEach((a, i) => (eps[i]!.active = a));
    const counts = tally(lr(eps), N);
    // The idle endpoint wins whenever it is one of the two candidates: 1 − C(3,2)/C(4,2) = 1/2.
    near(share(counts, eps[3]!, N), 1 / 2, 0.02, 'idle endpoint');
    for (const e of eps.slice(0, 3)) near(share(counts, e, N), 1 / 6, 0.02, e.key);
  });

  it('never picks an endpoint busier than all the others', () => {
    const eps = endpoints([1, 1, 1, 1]);
    [0, 1, 2, 9].forEach((a, i) => (eps[i]!.active = a));
    assert.equal(tally(lr(eps), N).get(eps[3]!), undefined);
  });

  it('with two endpoints, always picks the less loaded one', () => {
    const eps = endpoints([1, 1]);
    eps[0]!.active = 3;
    assert.deepEqual([...tally(lr(eps), 1000).keys()], [eps[1]]);
  });

  it('keeps in-flight counts level when requests never finish', () => {
    for (let seed = 0; seed < 5; seed++) {
      const eps = endpoints([1, 1, 1, 1, 1, 1, 1, 1]);
      const b = lr(eps, seed);
      for (let i = 0; i < 800; i++) picked(b).active++;
      const active = eps.map((e) => e.active);
      assert.ok(Math.max(...active) - Math.min(...active) <= 3, `seed ${seed}: ${active.join(',')}`);
    }
    // For contrast: random placement drifts apart (about ±10 per endpoint at this size).
    const eps = endpoints([1, 1, 1, 1, 1, 1, 1, 1]);
    const b = weightedRandom(eps, null, deps(0));
    for (let i = 0; i < 800; i++) picked(b).active++;
    const active = eps.map((e) => e.active);
    assert.ok(Math.max(...active) - Math.min(...active) > 3);
  });

  it('picks the two candidates distinctly (a lone idle endpoint is found half the time with 4)', () => {
    // If the two candidates could coincide, the idle share would drop to 1 − (3/4)² = 7/16.
    const eps = endpoints([1, 1, 1, 1]);
    [1, 1, 1, 0].forEach((a, i) => (eps[i]!.active = a));
    near(share(tally(lr(eps, 9), N), eps[3]!, N), 1 / 2, 0.015, 'idle endpoint');
  });
});

describe('least request, unequal weights (weight / (active + 1) ^ bias)', () => {
  it('splits by weight while idle', () => {
    const eps = endpoints([2, 1, 1]);
    const counts = tally(lr(eps), N);
    eps.forEach((e, i) => near(share(counts, e, N), [0.5, 0.25, 0.25][i]!, 0.01, e.key));
  });

  it('sends less to a loaded heavy endpoint, in proportion to weight / (active + 1)', () => {
    const eps = endpoints([2, 1, 1]);
    eps[0]!.active = 9;
    const counts = tally(lr(eps), N);
    // Effective weights 2/10, 1, 1.
    near(share(counts, eps[0]!, N), 0.2 / 2.2, 0.01, 'loaded heavy endpoint');
    near(share(counts, eps[1]!, N), 1 / 2.2, 0.01, 'idle light endpoint');
  });

  it('recovers once the endpoint drains', () => {
    const eps = endpoints([2, 1, 1]);
    const b = lr(eps);
    eps[0]!.active = 9;
    tally(b, 1000);
    eps[0]!.active = 0;
    tally(b, 100); // the endpoint's next pick reschedules it at its idle weight
    near(share(tally(b, N), eps[0]!, N), 0.5, 0.01, 'drained heavy endpoint');
  });

  it('honours activeRequestBias: 0 ignores load, 2 punishes it harder', () => {
    const run = (bias: number) => {
      const eps = endpoints([2, 1, 1]);
      eps[0]!.active = 1;
      return share(tally(lr(eps, 1, parseLeastRequestConfig({ activeRequestBias: bias })), N), eps[0]!, N);
    };
    near(run(0), 0.5, 0.01, 'bias 0'); // weights 2, 1, 1
    near(run(1), 1 / 3, 0.01, 'bias 1'); // 2/2, 1, 1
    near(run(2), 0.5 / 2.5, 0.01, 'bias 2'); // 2/4, 1, 1
  });
});

describe('least request config', () => {
  it('defaults activeRequestBias to 1.0, as Envoy does', () => {
    assert.deepEqual(parseLeastRequestConfig(undefined), { activeRequestBias: 1 });
    assert.deepEqual(parseLeastRequestConfig({}), { activeRequestBias: 1 });
  });

  it('rejects a negative, infinite or non-numeric bias', () => {
    for (const bad of [-0.5, Infinity, NaN, '1']) {
      assert.throws(() => parseLeastRequestConfig({ activeRequestBias: bad }), /LEAST_REQUEST: activeRequestBias/);
    }
  });
});
