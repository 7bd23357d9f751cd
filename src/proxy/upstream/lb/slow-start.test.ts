// Slow start: Envoy's ramp formula, the decorator on a manual clock, join times across snapshots, and compile-time checks.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../../core/clock.ts';
import { seededRandom } from '../../../core/random.ts';
import type { LbConfig, WarmupConfig } from '../../../wire/snapshot.ts';
import { EndpointStates } from '../endpoints.ts';
import type { BalancerDeps, LbEndpoint } from './balancer.ts';
import { compileLbPolicy, createBalancer } from './registry.ts';
import { parseSlowStartConfig, slowStartFactor, type SlowStartConfig } from './slow-start.ts';
import { endpoints, near, picked, share, tally } from './testing.ts';

const config = (c: Partial<WarmupConfig> = {}): SlowStartConfig =>
  parseSlowStartConfig({ durationMs: 100_000, minimumPercent: 10, aggression: 1, ...c });

describe('slowStartFactor: weight × max(minimumPercent / 100, (elapsed / window) ^ (1 / aggression))', () => {
  it('ramps linearly with aggression 1, from the minimumPercent floor to the full weight', () => {
    const c = config();
    const table: Array<[number, number]> = [
      [0, 0.1], // the floor (the time factor is at least 1 ms / window)
      [5_000, 0.1], // 0.05 is under the floor
      [10_000, 0.1],
      [25_000, 0.25],
      [50_000, 0.5],
      [99_000, 0.99],
      [100_000, 1], // the window is over: plain weight
      [3_600_000, 1],
    ];
    for (const [elapsed, factor] of table) near(slowStartFactor(elapsed, c), factor, 1e-12, `${elapsed} ms`);
  });

  it('follows the aggression curve: above 1 ramps faster early, below 1 slower', () => {
    near(slowStartFactor(25_000, config({ aggression: 2 })), 0.5, 1e-12, 'sqrt(0.25)');
    near(slowStartFactor(50_000, config({ aggression: 0.5 })), 0.25, 1e-12, '0.5 ^ 2');
    near(slowStartFactor(64_000, config({ aggression: 1 / 3 })), 0.262144, 1e-12, '0.64 ^ 3');
    near(slowStartFactor(1_000, config({ aggression: 4 })), 0.01 ** 0.25, 1e-12, '0.01 ^ 0.25');
    // The floor still holds under a slow curve.
    near(slowStartFactor(20_000, config({ aggression: 0.5 })), 0.1, 1e-12, 'max(0.04, 0.1)');
  });

  it('uses at least 1 ms of elapsed time, so a zero floor never makes a weight zero', () => {
    const c = config({ minimumPercent: 0 });
    assert.equal(slowStartFactor(0, c), 1 / 100_000);
    assert.equal(slowStartFactor(-5, c), 1 / 100_000);
  });

  it('floors at minimumPercent for the whole window when it is 100 (no ramp at all)', () => {
    for (const t of [0, 1, 50_000, 99_999]) assert.equal(slowStartFactor(t, config({ minimumPercent: 100 })), 1);
  });
});

describe('parseSlowStartConfig', () => {
  it('takes Istio defaults for minimumPercent and aggression', () => {
    assert.deepEqual(parseSlowStartConfig({ durationMs: 5000 }), { windowMs: 5000, minWeight: 0.1, aggression: 1 });
  });

  it('rejects settings that would break the ramp, with a message fit for a NACK', () => {
    const bad: Array<[unknown, RegExp]> = [
      [undefined, /durationMs must be a finite number > 0, got undefined/],
      [{}, /durationMs must be/],
      [{ durationMs: 0 }, /durationMs must be a finite number > 0, got 0/],
      [{ durationMs: '60s' }, /warmup: durationMs must be a number, got "60s"/],
      [{ durationMs: 1000, minimumPercent: 101 }, /minimumPercent must be from 0 to 100, got 101/],
      [{ durationMs: 1000, minimumPercent: -1 }, /minimumPercent/],
      [{ durationMs: 1000, aggression: 0 }, /aggression must be a finite number > 0, got 0/],
      [{ durationMs: 1000, aggression: Infinity }, /aggression/],
    ];
    for (const [settings, message] of bad) assert.throws(() => parseSlowStartConfig(settings), message, JSON.stringify(settings));
  });
});

// Two endpoints of equal weight: `old` has been in the cluster for ever, `fresh` joins at t = 0.
function pair(joinedAt = 0): LbEndpoint[] {
  const [old, fresh] = endpoints([1, 1]);
  return [old!, { ...fresh!, joinedAt }];
}

function depsAt(clock: ManualClock, seed = 1): BalancerDeps {
  return { random: seededRandom(seed), clock };
}

const warm = (simple: 'ROUND_ROBIN' | 'LEAST_REQUEST', w: Partial<WarmupConfig> = {}): LbConfig => ({
  simple,
  warmup: { durationMs: 100_000, minimumPercent: 10, aggression: 1, ...w },
});

for (const simple of ['ROUND_ROBIN', 'LEAST_REQUEST'] as const) {
  describe(`${simple} with warmup`, () => {
    const N = 20_000;
    /** The share of `fresh` over N picks with the clock held at `at` ms. */
    function freshShare(at: number, w: Partial<WarmupConfig> = {}): number {
      const clock = new ManualClock(0);
      const eps = pair();
      const b = createBalancer(warm(simple, w), eps, depsAt(clock));
      clock.advance(at);
      return share(tally(b, N), eps[1]!, N);
    }
    // fresh weight f against old weight 1: share f / (1 + f).
    const expected = (f: number) => f / (1 + f);

    it('ramps a new endpoint linearly: its share follows its weight at each point of the window', () => {
      for (const [at, f] of [[25_000, 0.25], [50_000, 0.5], [75_000, 0.75]] as const) {
        near(freshShare(at), expected(f), 0.01, `at ${at / 1000} s`);
      }
    });

    it('holds a new endpoint at the minimumPercent floor early in the window', () => {
      near(freshShare(0), expected(0.1), 0.01, 'at 0 s');
      near(freshShare(8_000), expected(0.1), 0.01, 'at 8 s, 0.08 < 0.1');
      near(freshShare(8_000, { minimumPercent: 30 }), expected(0.3), 0.01, 'with a 30 % floor');
    });

    it('follows the aggression curve', () => {
      near(freshShare(25_000, { aggression: 2 }), expected(0.5), 0.01, 'aggression 2 at a quarter: sqrt');
      near(freshShare(50_000, { aggression: 0.5 }), expected(0.25), 0.01, 'aggression 0.5 at half: square');
    });

    it('gives plain weights once the window is over', () => {
      near(freshShare(100_000), 0.5, 0.01, 'at the end of the window');
      near(freshShare(500_000), 0.5, 0.01, 'long after');
      // Built after the window, it is the plain balancer: the same picks, seed for seed.
      const clock = new ManualClock(200_000);
      const eps = pair();
      const warmed = createBalancer(warm(simple), eps, depsAt(clock, 3));
      const plain = createBalancer({ simple }, eps, depsAt(clock, 3));
      for (let i = 0; i < 500; i++) assert.equal(picked(warmed), picked(plain));
    });

    it('re-weighs as the clock moves, on the same balancer', () => {
      const clock = new ManualClock(0);
      const eps = pair();
      const b = createBalancer(warm(simple, { minimumPercent: 0 }), eps, depsAt(clock));
      // One pick every 5 ms for 100 s: the fresh endpoint's share in each tenth of the window
      // tracks the mean of t/window over that tenth, (k + 0.5) / 10 against 1.
      for (let tenth = 0; tenth < 10; tenth++) {
        let fresh = 0;
        for (let i = 0; i < 2000; i++) {
          if (picked(b) === eps[1]) fresh++;
          clock.advance(5);
        }
        const f = (tenth + 0.5) / 10;
        near(fresh / 2000, f / (1 + f), 0.03, `tenth ${tenth}`);
      }
      near(share(tally(b, N), eps[1]!, N), 0.5, 0.01, 'after the window');
    });

    it('ramps the cluster\'s first endpoints together: equal join times leave shares as they are', () => {
      const clock = new ManualClock(0);
      const eps = endpoints([3, 1]).map((e) => ({ ...e, joinedAt: 0 }));
      const b = createBalancer(warm(simple), eps, depsAt(clock));
      for (const at of [0, 30_000, 70_000]) {
        clock.advance(at - clock.now());
        near(share(tally(b, N), eps[0]!, N), 0.75, 0.01, `at ${at / 1000} s`);
      }
    });

    it('returns the real endpoints, never writes to them, and reads their live load', () => {
      const clock = new ManualClock(50_000);
      const eps = pair();
      const b = createBalancer(warm(simple), eps, depsAt(clock));
      const counts = tally(b, 1000);
      for (const e of counts.keys()) assert.ok(eps.includes(e), `picked ${e.key}, not a real endpoint`);
      assert.deepEqual(eps.map((e) => [e.weight, e.active]), [[1, 0], [1, 0]]);
      if (simple === 'LEAST_REQUEST') {
        // The old endpoint is busy: least-request weighs it 1 / (active + 1), so the warming one gets more.
        eps[0]!.active = 9;
        near(share(tally(b, N), eps[1]!, N), 0.5 / (0.5 + 1 / 10), 0.01, 'fresh 0.5 against busy old 0.1');
      }
    });

    it('still never picks a zero-weight endpoint, and fails an empty set', () => {
      const clock = new ManualClock(10_000);
      const eps = [{ ...endpoints([0])[0]!, joinedAt: 0 }, ...pair()];
      const counts = tally(createBalancer(warm(simple), eps, depsAt(clock)), 5000);
      assert.equal(counts.get(eps[0]!), undefined);
      assert.deepEqual(createBalancer(warm(simple), [], depsAt(clock)).pick({}), { kind: 'fail', code: 'NO_HEALTHY_UPSTREAM' });
    });
  });
}

describe('warmup in the registry', () => {
  it('is rejected when compiled for a policy Envoy does not slow-start', () => {
    const w = { durationMs: 1000, minimumPercent: 10, aggression: 1 };
    for (const config of [
      { simple: 'RANDOM', warmup: w },
      { simple: 'PASSTHROUGH', warmup: w },
      { consistentHash: { key: { header: 'x' }, algorithm: { ringHash: { minimumRingSize: 16 } } }, warmup: w },
    ]) {
      assert.throws(() => compileLbPolicy(config as unknown as LbConfig), /warmup: \w+ has no slow start \(only ROUND_ROBIN and LEAST_REQUEST ramp/);
    }
  });

  it('is checked when compiled, before any endpoints exist', () => {
    assert.throws(() => compileLbPolicy(warm('ROUND_ROBIN', { durationMs: 0 })), /durationMs must be a finite number > 0/);
    assert.equal(compileLbPolicy(warm('LEAST_REQUEST')).name, 'LEAST_REQUEST');
  });
});

describe('join times across snapshots (EndpointStates.joinTimes)', () => {
  const A = '10.0.0.1:80';
  const B = '10.0.0.2:80';
  const C = '10.0.0.3:80';

  it('starts a new cluster\'s endpoints together, and each later one when it joins', () => {
    const states = new EndpointStates();
    assert.deepEqual([...states.joinTimes('c', [A, B], 1000)], [[A, 1000], [B, 1000]]);
    assert.deepEqual([...states.joinTimes('c', [A, B, C], 5000)], [[A, 1000], [B, 1000], [C, 5000]]);
    // Another cluster with the same addresses has its own history.
    assert.deepEqual([...states.joinTimes('d', [C], 6000)], [[C, 6000]]);
  });

  it('forgets an endpoint that leaves, so it ramps again when it comes back', () => {
    const states = new EndpointStates();
    states.joinTimes('c', [A, B], 0);
    states.joinTimes('c', [A], 10_000);
    assert.deepEqual([...states.joinTimes('c', [A, B], 20_000)], [[A, 0], [B, 20_000]]);
  });

  it('forgets addresses no snapshot names any more', async () => {
    const states = new EndpointStates();
    states.joinTimes('c', [A, B], 0);
    states.joinTimes('d', [B], 0);
    states.retain(new Set([A]));
    assert.deepEqual([...states.joinTimes('c', [A, B], 7)], [[A, 0], [B, 7]]);
    assert.deepEqual([...states.joinTimes('d', [B], 8)], [[B, 8]]);
    await states.closeAll();
  });

  it('feeds slow start: an endpoint that joins a serving cluster ramps, the others keep their weight', () => {
    const clock = new ManualClock(0);
    const states = new EndpointStates();
    const policy = compileLbPolicy(warm('ROUND_ROBIN'));
    const build = (keys: string[]) => {
      const joined = states.joinTimes('outbound|80||m', keys, clock.now());
      return keys.map((key) => ({ key, weight: 1, active: 0, joinedAt: joined.get(key) }));
    };
    build([A, B]); // the first snapshot
    clock.advance(600_000); // long after: A and B are warm
    const eps = build([A, B, C]); // C joins
    clock.advance(50_000);
    const b = policy.build(eps, depsAt(clock));
    const counts = tally(b, 25_000);
    near(share(counts, eps[2]!, 25_000), 0.5 / 2.5, 0.01, 'C at half weight against two full ones');
  });
});
