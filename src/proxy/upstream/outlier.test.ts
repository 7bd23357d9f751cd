// Outlier detection: Envoy's consecutive-error ejection, driven by a manual clock.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.ts';
import { parseOutlierConfig } from '../../translate/resilience.ts';
import { OutlierDetector, type Ejection, type OutlierConfig, type OutlierOutcome } from './outlier.ts';

const ok: OutlierOutcome = { kind: 'response', status: 200 };
const s500: OutlierOutcome = { kind: 'response', status: 500 };
const s502: OutlierOutcome = { kind: 'response', status: 502 };
const s503: OutlierOutcome = { kind: 'response', status: 503 };
const connectFailure: OutlierOutcome = { kind: 'local', code: 'UPSTREAM_CONNECT_FAILURE' };
const reset: OutlierOutcome = { kind: 'local', code: 'UPSTREAM_RESET' };
const refused: OutlierOutcome = { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' };
const timeout: OutlierOutcome = { kind: 'local', code: 'UPSTREAM_TIMEOUT' };
const idle: OutlierOutcome = { kind: 'local', code: 'STREAM_IDLE_TIMEOUT' };

const keys = (n: number) => Array.from({ length: n }, (_v, i) => `10.0.0.${i + 1}:80`);

function detector(istio: Record<string, unknown>, endpoints = 2, opts: { alwaysEjectOneHost?: boolean } = {}) {
  const clock = new ManualClock(1_000);
  const eps = keys(endpoints);
  const d = new OutlierDetector(parseOutlierConfig(istio, opts), clock, eps);
  return { clock, d, eps };
}

function times(d: OutlierDetector, key: string, outcome: OutlierOutcome, n: number) {
  let last: Ejection | undefined;
  for (let i = 0; i < n; i++) last = d.record(key, outcome) ?? last;
  return last;
}

describe('parseOutlierConfig: Istio fields to a wire config', () => {
  it('fills Istio and Envoy defaults', () => {
    assert.deepEqual(parseOutlierConfig({}), {
      consecutive5xx: 5,
      consecutiveGatewayErrors: 0,
      splitExternalLocalOriginErrors: false,
      consecutiveLocalOriginFailures: 5,
      intervalMs: 10_000,
      baseEjectionTimeMs: 30_000,
      maxEjectionTimeMs: 300_000,
      maxEjectionPercent: 10,
      alwaysEjectOneHost: true,
      minHealthPercent: 0,
    } satisfies OutlierConfig);
  });

  it('reads the seed circuit breaker', () => {
    const c = parseOutlierConfig({ consecutive5xxErrors: 3, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 });
    assert.equal(c.consecutive5xx, 3);
    assert.equal(c.intervalMs, 10_000);
    assert.equal(c.baseEjectionTimeMs, 30_000);
    assert.equal(c.maxEjectionPercent, 50);
  });

  it('keeps Istio’s quirks: 0 % means the default 10 %; the cap is never below the base time', () => {
    assert.equal(parseOutlierConfig({ maxEjectionPercent: 0 }).maxEjectionPercent, 10);
    assert.equal(parseOutlierConfig({ baseEjectionTime: '10m' }).maxEjectionTimeMs, 600_000);
    assert.equal(parseOutlierConfig({ baseEjectionTime: '1.5s' }).baseEjectionTimeMs, 1_500);
    // With the split, an unset (or 0) local-origin threshold is Envoy's default 5.
    assert.equal(parseOutlierConfig({ splitExternalLocalOriginErrors: true }).consecutiveLocalOriginFailures, 5);
    assert.equal(parseOutlierConfig({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2 }).consecutiveLocalOriginFailures, 2);
    // The deprecated field is accepted and ignored, as Istio's translation ignores it.
    assert.equal(parseOutlierConfig({ consecutiveErrors: 1 }).consecutive5xx, 5);
    assert.deepEqual(parseOutlierConfig({ outlierDetectionHttpErrorCodes: [429, 503] }).errorStatusCodes, [429, 503]);
  });

  it('rejects what Istio rejects (the proxy NACKs)', () => {
    assert.throws(() => parseOutlierConfig({ consecutiveLocalOriginFailures: 3 }), /needs splitExternalLocalOriginErrors/);
    assert.throws(() => parseOutlierConfig({ interval: 'soon' }), /invalid duration/);
    assert.throws(() => parseOutlierConfig({ interval: '0.5ms' }), /greater than 1ms/);
    assert.throws(() => parseOutlierConfig({ maxEjectionPercent: 101 }), /not in range/);
    assert.throws(() => parseOutlierConfig({ consecutive5xxErrors: -1 }), /not in range/);
    assert.throws(() => parseOutlierConfig({ consecutive5xxErrors: '5' }), /expected an integer/);
    assert.throws(() => parseOutlierConfig({ consecutive5xx: 5 }), /unknown field "consecutive5xx"/);
    assert.throws(() => parseOutlierConfig({ outlierDetectionHttpErrorCodes: [99] }), /not a status code/);
    assert.throws(() => parseOutlierConfig([1]), /expected a map/);
  });

  it('the detector rejects a broken wire config', () => {
    const bad = { ...parseOutlierConfig({}), intervalMs: 0 };
    assert.throws(() => new OutlierDetector(bad, new ManualClock()), /intervalMs/);
  });
});

describe('consecutive 5xx', () => {
  it('ejects after exactly N consecutive errors, inline', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    assert.equal(times(d, eps[0]!, s500, 2), undefined);
    assert.equal(d.isEjected(eps[0]!), false);
    const ejection = d.record(eps[0]!, s503);
    assert.deepEqual(ejection, { endpoint: eps[0], reason: 'consecutive_5xx', since: clock.now(), until: clock.now() + 30_000, times: 1 });
    assert.equal(d.isEjected(eps[0]!), true);
    assert.equal(d.isEjected(eps[1]!), false);
  });

  it('defaults to 5', () => {
    const { d, eps } = detector({ maxEjectionPercent: 100 });
    times(d, eps[0]!, s500, 4);
    assert.equal(d.isEjected(eps[0]!), false);
    d.record(eps[0]!, s500);
    assert.equal(d.isEjected(eps[0]!), true);
  });

  it('a success resets the count; 4xx is a success', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    times(d, eps[0]!, s500, 2);
    d.record(eps[0]!, ok);
    times(d, eps[0]!, s500, 2);
    d.record(eps[0]!, { kind: 'response', status: 404 });
    times(d, eps[0]!, s500, 2);
    assert.equal(d.isEjected(eps[0]!), false);
    d.record(eps[0]!, s500);
    assert.equal(d.isEjected(eps[0]!), true);
  });

  it('0 disables it', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 0, maxEjectionPercent: 100 });
    times(d, eps[0]!, s500, 50);
    assert.equal(d.isEjected(eps[0]!), false);
  });

  it('local-origin failures count as 5xx without the split (connect, reset as 503; timeout as 504)', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    d.record(eps[0]!, connectFailure);
    d.record(eps[0]!, reset);
    assert.equal(d.record(eps[0]!, timeout)?.reason, 'consecutive_5xx');
  });

  it('a stream refused unprocessed counts as a reset (503): a 5xx and a gateway error', () => {
    const a = detector({ consecutive5xxErrors: 2, maxEjectionPercent: 100 });
    a.d.record(a.eps[0]!, refused);
    assert.equal(a.d.record(a.eps[0]!, refused)?.reason, 'consecutive_5xx');
    const g = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 });
    g.d.record(g.eps[0]!, refused);
    assert.equal(g.d.record(g.eps[0]!, refused)?.reason, 'consecutive_gateway_failure');
  });

  it('a stream gone quiet past the idle timeout counts as a timeout (504): a 5xx and a gateway error', () => {
    const a = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    a.d.record(a.eps[0]!, idle);
    a.d.record(a.eps[0]!, reset);
    assert.equal(a.d.isEjected(a.eps[0]!), false);
    assert.equal(a.d.record(a.eps[0]!, idle)?.reason, 'consecutive_5xx');
    const g = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 });
    g.d.record(g.eps[0]!, idle);
    assert.equal(g.d.record(g.eps[0]!, idle)?.reason, 'consecutive_gateway_failure');
  });

  it('streams cut after their headers: N cuts in a row eject only if the 200 is not counted first', () => {
    // Envoy's order (the status at the headers, then the reset) restarts the run every time ...
    const envoy = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    for (let i = 0; i < 5; i++) {
      envoy.d.record(envoy.eps[0]!, ok);
      envoy.d.record(envoy.eps[0]!, reset);
    }
    assert.equal(envoy.d.isEjected(envoy.eps[0]!), false);
    // ... so the pipeline counts a relayed answer once, when its body ends: the cut instead of the 200.
    const weft = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    weft.d.record(weft.eps[0]!, reset);
    weft.d.record(weft.eps[0]!, idle);
    assert.equal(weft.d.record(weft.eps[0]!, reset)?.reason, 'consecutive_5xx');
  });

  it('outcomes that are not the endpoint’s doing are ignored', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 2, maxEjectionPercent: 100 });
    d.record(eps[0]!, s500);
    d.record(eps[0]!, { kind: 'local', code: 'DOWNSTREAM_DISCONNECT' });
    d.record(eps[0]!, { kind: 'local', code: 'NO_HEALTHY_UPSTREAM' });
    assert.equal(d.record(eps[0]!, s500)?.reason, 'consecutive_5xx');
    assert.equal(d.record('10.9.9.9:80', s500), undefined, 'not in the cluster');
  });

  it('outlierDetectionHttpErrorCodes: only the listed statuses are errors; local failures still are', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100, outlierDetectionHttpErrorCodes: [429] });
    times(d, eps[0]!, s500, 10);
    assert.equal(d.isEjected(eps[0]!), false);
    assert.equal(times(d, eps[0]!, { kind: 'response', status: 429 }, 3)?.reason, 'consecutive_5xx');
    times(d, eps[1]!, connectFailure, 3);
    assert.equal(d.isEjected(eps[1]!), true);
  });
});

describe('consecutive gateway errors', () => {
  it('count only when set', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 0, maxEjectionPercent: 100 });
    times(d, eps[0]!, s503, 20);
    assert.equal(d.isEjected(eps[0]!), false);
  });

  it('eject after N consecutive 502/503/504; another 5xx breaks the run', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, maxEjectionPercent: 100 });
    d.record(eps[0]!, s502);
    d.record(eps[0]!, s503);
    d.record(eps[0]!, s500);
    d.record(eps[0]!, s502);
    d.record(eps[0]!, { kind: 'response', status: 504 });
    assert.equal(d.isEjected(eps[0]!), false);
    assert.equal(d.record(eps[0]!, s503)?.reason, 'consecutive_gateway_failure');
  });

  it('the 500 that breaks a gateway run still counts towards consecutive 5xx', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 4, consecutiveGatewayErrors: 3, maxEjectionPercent: 100 });
    d.record(eps[0]!, s502);
    d.record(eps[0]!, s502);
    d.record(eps[0]!, s500);
    assert.equal(d.record(eps[0]!, s502)?.reason, 'consecutive_5xx');
  });

  it('a connect failure or timeout is a gateway error without the split', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 });
    d.record(eps[0]!, timeout);
    assert.equal(d.record(eps[0]!, connectFailure)?.reason, 'consecutive_gateway_failure');
  });
});

describe('splitExternalLocalOriginErrors', () => {
  const split = { splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 3, consecutive5xxErrors: 2, maxEjectionPercent: 100 };

  it('local-origin failures have their own threshold and do not count as 5xx', () => {
    const { d, eps } = detector(split);
    d.record(eps[0]!, connectFailure);
    d.record(eps[0]!, connectFailure);
    assert.equal(d.isEjected(eps[0]!), false, 'two connect failures are not two 5xx');
    assert.equal(d.record(eps[0]!, connectFailure)?.reason, 'consecutive_local_origin_failure');
  });

  it('any answer from the endpoint resets the local-origin count, and still counts as 5xx', () => {
    const { d, eps } = detector(split);
    d.record(eps[0]!, connectFailure);
    d.record(eps[0]!, connectFailure);
    d.record(eps[0]!, s500);
    d.record(eps[0]!, connectFailure);
    d.record(eps[0]!, connectFailure);
    assert.equal(d.isEjected(eps[0]!), false);
    assert.equal(d.record(eps[0]!, s500)?.reason, 'consecutive_5xx', '5xx are counted separately: 500, 500');
  });

  it('a reset or timeout after connecting counts once after the connect success (as in Envoy)', () => {
    const { d, eps } = detector({ ...split, consecutiveLocalOriginFailures: 2 });
    times(d, eps[0]!, reset, 5);
    times(d, eps[0]!, timeout, 5);
    assert.equal(d.isEjected(eps[0]!), false);
    d.record(eps[0]!, reset);
    assert.equal(d.record(eps[0]!, connectFailure)?.reason, 'consecutive_local_origin_failure');
  });

  it('a refused stream is a local-origin failure after the connect success, as a reset is; not a 5xx', () => {
    const { d, eps } = detector({ ...split, consecutive5xxErrors: 1, consecutiveLocalOriginFailures: 2 });
    times(d, eps[0]!, refused, 5);
    assert.equal(d.isEjected(eps[0]!), false, 'each came on a connection that was up');
    assert.equal(d.stats().detected.consecutive_5xx, 0);
    d.record(eps[0]!, refused);
    assert.equal(d.record(eps[0]!, connectFailure)?.reason, 'consecutive_local_origin_failure');
  });

  it('the idle timeout of a stream is a local-origin failure, not a 5xx', () => {
    const { d, eps } = detector({ ...split, consecutive5xxErrors: 1, consecutiveLocalOriginFailures: 1 });
    assert.equal(d.record(eps[0]!, idle)?.reason, 'consecutive_local_origin_failure');
    assert.equal(d.stats().detected.consecutive_5xx, 0);
  });
});

describe('ejection time', () => {
  it('is baseEjectionTime × times ejected; the endpoint returns at the first sweep after its time is up', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 });
    const until: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const e: Ejection = d.record(eps[0]!, s500)!;
      assert.equal(e.times, n);
      assert.equal(e.until - e.since, 30_000 * n);
      until.push(e.until);
      // Sweep every 10 s until it comes back; it must come back exactly at the first sweep ≥ until.
      let back = false;
      while (!back) {
        clock.advance(10_000);
        const returned = d.sweep();
        back = returned.includes(eps[0]!);
        assert.equal(back, clock.now() >= e.until, `at ${clock.now()} (until ${e.until})`);
      }
    }
  });

  it('un-ejects at the right time, not before, and reports until when', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, baseEjectionTime: '30s', maxEjectionPercent: 100 });
    clock.advance(3_000);
    const e = d.record(eps[0]!, s500)!;
    assert.deepEqual(d.ejections(), [{ endpoint: eps[0], reason: 'consecutive_5xx', since: 4_000, until: 34_000, times: 1 }]);
    assert.deepEqual(d.sweep(e.until - 1), []);
    assert.equal(d.isEjected(eps[0]!), true);
    assert.deepEqual(d.sweep(e.until), [eps[0]]);
    assert.equal(d.isEjected(eps[0]!), false);
    assert.deepEqual(d.ejections(), []);
  });

  it('is capped at 300 s (Envoy’s max_ejection_time default)', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, baseEjectionTime: '30s', maxEjectionPercent: 100 });
    const durations: number[] = [];
    for (let n = 0; n < 14; n++) {
      const e = d.record(eps[0]!, s500)!;
      durations.push(e.until - e.since);
      clock.advance(e.until - e.since);
      assert.deepEqual(d.sweep(), [eps[0]]);
    }
    assert.deepEqual(durations, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300, 300, 300, 300, 300].map((s) => s * 1000));
  });

  it('the multiplier drops by one per healthy interval', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 });
    for (let n = 1; n <= 3; n++) {
      const e: Ejection = d.record(eps[0]!, s500)!;
      clock.advance(e.until - e.since);
      d.sweep();
    }
    // Back after a 90 s ejection (multiplier 3). The sweep that returned it does not count.
    clock.advance(10_000);
    d.sweep(); // one healthy interval: 3 → 2
    const e = d.record(eps[0]!, s500)!;
    assert.equal(e.until - e.since, 90_000, 'multiplier 2, then +1 for this ejection');
    clock.advance(90_000);
    d.sweep();
    for (let i = 0; i < 3; i++) {
      clock.advance(10_000);
      d.sweep();
    }
    assert.equal(d.record(eps[0]!, s500)!.until - clock.now(), 30_000, 'decayed to 0, so base × 1');
  });

  it('at the cap the multiplier stops one step past it (Envoy: while multiplier × base < max + base)', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 100 });
    const eject = () => {
      const e = d.record(eps[0]!, s500)!;
      clock.advance(e.until - e.since);
      d.sweep();
      return e.until - e.since;
    };
    const healthy = (intervals: number) => {
      for (let i = 0; i < intervals; i++) {
        clock.advance(10_000);
        d.sweep();
      }
    };
    for (let n = 0; n < 12; n++) eject(); // multiplier 11: 11 × 30 s = 330 s = max + base
    healthy(2); // 11 → 9
    assert.equal(eject(), 300_000, '9 + 1 = 10: still 300 s');
    healthy(3); // 10 → 7
    assert.equal(eject(), 240_000, '7 + 1 = 8');
  });

  it('counters start afresh when an endpoint returns', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 });
    times(d, eps[0]!, s500, 3);
    times(d, eps[0]!, s500, 2); // still in flight while ejected: counted, but changes nothing
    clock.advance(30_000);
    assert.deepEqual(d.sweep(), [eps[0]]);
    times(d, eps[0]!, s500, 2);
    assert.equal(d.isEjected(eps[0]!), false);
  });
});

describe('maxEjectionPercent', () => {
  it('default 10 %: with 10 endpoints one can be ejected, not two', () => {
    const { d, eps } = detector({}, 10);
    assert.ok(times(d, eps[0]!, s500, 5));
    assert.equal(times(d, eps[1]!, s500, 5), undefined);
    assert.deepEqual(d.ejections().map((e) => e.endpoint), [eps[0]]);
    assert.equal(d.stats().overflow, 1);
  });

  it('default 10 %, but at least one: with 3 endpoints the first failing one is ejected, a second is not', () => {
    const { d, eps } = detector({}, 3);
    assert.ok(times(d, eps[0]!, s500, 5));
    assert.equal(times(d, eps[1]!, s500, 5), undefined);
    assert.equal(d.stats().ejectionsActive, 1);
    assert.equal(d.stats().overflow, 1);
  });

  it('at least one applies only while none is ejected: once the first returns, another may go', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1 }, 3);
    d.record(eps[0]!, s500);
    assert.equal(d.record(eps[1]!, s500), undefined);
    clock.advance(30_000);
    d.sweep();
    assert.ok(d.record(eps[1]!, s500));
    assert.deepEqual(d.ejections().map((e) => e.endpoint), [eps[1]]);
  });

  it('without always_eject_one_host (Envoy ≥ 1.28 as Istio configures it) fewer than 10 endpoints eject none', () => {
    const { d, eps } = detector({}, 3, { alwaysEjectOneHost: false });
    times(d, eps[0]!, s500, 5);
    assert.equal(d.isEjected(eps[0]!), false);
    assert.deepEqual(d.stats().detected.consecutive_5xx, 1);
    assert.deepEqual(d.stats().overflow, 1);
  });

  it('counts the ejection being decided: 50 % of 3 allows one, 50 % of 2 allows one, 50 % of 4 two', () => {
    for (const [n, allowed] of [[3, 1], [2, 1], [4, 2]] as const) {
      const { d, eps } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, n);
      for (const key of eps) d.record(key, s500);
      assert.equal(d.ejections().length, allowed, `${n} endpoints`);
    }
  });

  it('frees a slot when an ejected endpoint returns or leaves the cluster', () => {
    const { d, eps, clock } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, 2);
    d.record(eps[0]!, s500);
    assert.equal(d.record(eps[1]!, s500), undefined);
    clock.advance(30_000);
    d.sweep();
    assert.ok(d.record(eps[1]!, s500));
    d.setEndpoints([eps[0]!, '10.0.0.9:80']);
    assert.equal(d.stats().ejectionsActive, 0);
    assert.ok(d.record(eps[0]!, s500));
  });
});

describe('all endpoints ejected, and panic', () => {
  it('are all reported; nothing is usable (503 UH) while minHealthPercent is 0', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, 3);
    d.record(eps[0]!, s500);
    d.record(eps[1]!, connectFailure);
    d.record(eps[2]!, timeout);
    assert.deepEqual(d.ejections().map((e) => [e.endpoint, e.reason]), eps.map((k) => [k, 'consecutive_5xx']));
    const all = eps.map((key) => ({ key }));
    assert.deepEqual(d.usable(all), { endpoints: [], panic: false });
  });

  it('usable leaves out ejected endpoints', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, 3);
    d.record(eps[1]!, s500);
    const all = eps.map((key) => ({ key }));
    assert.deepEqual(d.usable(all), { endpoints: [all[0], all[2]], panic: false });
  });

  it('below minHealthPercent, balances over every endpoint (Envoy’s panic threshold)', () => {
    const { d, eps } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50 }, 3);
    const all = eps.map((key) => ({ key }));
    d.record(eps[0]!, s500);
    assert.deepEqual(d.usable(all).endpoints, [all[1], all[2]]);
    d.record(eps[1]!, s500);
    assert.deepEqual(d.usable(all), { endpoints: all, panic: true });
  });
});
