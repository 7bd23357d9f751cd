// Circuit limits: overflow without waiting, queueing at maxConnections, maxRetries skipping, the retry budget.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.ts';
import { UNLIMITED } from '../../core/config-fields.ts';
import { parseCircuitLimitsConfig } from '../../translate/resilience.ts';
import { MeshError } from '../../core/errors.ts';
import { CircuitLimits, type Admission, type Go } from './limits.ts';

const limits = (pool: unknown, retryBudget?: unknown, protocol: 'http1' | 'h2' = 'http1') =>
  new CircuitLimits(parseCircuitLimitsConfig(pool, retryBudget, { protocol }), new ManualClock());

function go(a: Admission): Go {
  assert.equal(a.kind, 'go');
  return a as Go;
}

describe('parseCircuitLimitsConfig: Istio fields to a wire config', () => {
  it('defaults every limit to 2^32−1, the connect timeout to 10 s, idle to 1 h', () => {
    assert.deepEqual(parseCircuitLimitsConfig(undefined), {
      maxConnections: UNLIMITED,
      maxPendingRequests: UNLIMITED,
      maxRequests: UNLIMITED,
      maxRetries: UNLIMITED,
      streamsPerConnection: 1,
      maxRequestsPerConnection: 0,
      connectTimeoutMs: 10_000,
      idleTimeoutMs: 3_600_000,
      maxConnectionDurationMs: 0,
    });
  });

  it('reads every tcp and http field', () => {
    const c = parseCircuitLimitsConfig(
      {
        tcp: { maxConnections: 100, connectTimeout: '30ms', maxConnectionDuration: '1h', tcpKeepalive: { probes: 3, time: '7200s', interval: '75s' }, idleTimeout: '5m' },
        http: { http1MaxPendingRequests: 10, http2MaxRequests: 1000, maxRequestsPerConnection: 1, maxRetries: 4, idleTimeout: '30s', h2UpgradePolicy: 'UPGRADE', maxConcurrentStreams: 50, http2KeepAlive: { interval: '10s', timeout: '2s' } },
      },
      { percent: 10 },
      { protocol: 'h2' },
    );
    assert.deepEqual(c, {
      maxConnections: 100,
      maxPendingRequests: 10,
      maxRequests: 1000,
      maxRetries: 4,
      streamsPerConnection: 50,
      maxRequestsPerConnection: 1,
      connectTimeoutMs: 30,
      idleTimeoutMs: 30_000, // http.idleTimeout wins over tcp.idleTimeout
      maxConnectionDurationMs: 3_600_000,
      tcpKeepalive: { probes: 3, timeMs: 7_200_000, intervalMs: 75_000 },
      http2KeepAlive: { intervalMs: 10_000, timeoutMs: 2_000 },
      retryBudget: { percent: 10, minRetryConcurrency: 3, budgetIntervalMs: 0 },
    });
  });

  it('keeps Istio’s quirks: 0 means unlimited; tcp idleTimeout 0s turns idle timeouts off; the mesh connect timeout', () => {
    const c = parseCircuitLimitsConfig({ tcp: { maxConnections: 0, idleTimeout: '0s' }, http: { maxRetries: 0 } }, undefined, { meshConnectTimeoutMs: 5_000 });
    assert.equal(c.maxConnections, UNLIMITED);
    assert.equal(c.maxRetries, UNLIMITED);
    assert.equal(c.idleTimeoutMs, 0);
    assert.equal(c.connectTimeoutMs, 5_000);
    assert.equal(parseCircuitLimitsConfig({ http: {} }, undefined, { protocol: 'h2' }).streamsPerConnection, 2147483647);
  });

  it('rejects what Istio rejects', () => {
    assert.throws(() => parseCircuitLimitsConfig({ tcp: { maxConnections: -1 } }), /not in range/);
    assert.throws(() => parseCircuitLimitsConfig({ tcp: { connectTimeout: '0s' } }), /greater than 1ms/);
    assert.throws(() => parseCircuitLimitsConfig({ http: { maxRetrys: 3 } }), /unknown field "maxRetrys"/);
    assert.throws(() => parseCircuitLimitsConfig({ http: { h2UpgradePolicy: 'SOMETIMES' } }), /unsupported value/);
    assert.throws(() => parseCircuitLimitsConfig({ http: { http2KeepAlive: { interval: '1s' } } }), /both required/);
    assert.throws(() => parseCircuitLimitsConfig({}, { percent: 120 }), /not in range/);
    assert.throws(() => new CircuitLimits({ ...parseCircuitLimitsConfig({}), streamsPerConnection: 0 }, new ManualClock()), /streamsPerConnection/);
  });
});

describe('admission', () => {
  it('over http2MaxRequests: overflow at once, without waiting on the upstream', () => {
    const l = limits({ http: { http2MaxRequests: 2 } });
    const a = go(l.admit());
    go(l.admit());
    assert.deepEqual(l.admit(), { kind: 'overflow', limit: 'max_requests' });
    a.release();
    go(l.admit());
    assert.equal(l.state().overflow, 1);
  });

  it('maxConnections reached: requests queue, they do not fail; first come, first served', async () => {
    const l = limits({ tcp: { maxConnections: 1 } });
    const first = go(l.admit());
    const second = l.admit();
    const third = l.admit();
    assert.equal(second.kind, 'queue');
    assert.equal(third.kind, 'queue');
    assert.deepEqual(l.state(), { active: 1, pending: 2, retries: 0, overflow: 0, retryOverflow: 0 });
    first.release();
    first.release(); // idempotent
    const granted = await (second as Extract<Admission, { kind: 'queue' }>).ready;
    assert.equal(granted.kind, 'go');
    assert.deepEqual(l.state(), { active: 1, pending: 1, retries: 0, overflow: 0, retryOverflow: 0 });
    (granted as Go).release();
    assert.equal((await (third as Extract<Admission, { kind: 'queue' }>).ready).kind, 'go');
  });

  it('pending queue full: overflow (the classic maxConnections: 1, http1MaxPendingRequests: 1)', () => {
    const l = limits({ tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } });
    go(l.admit());
    assert.equal(l.admit().kind, 'queue');
    const third = l.admit();
    assert.deepEqual(third, { kind: 'overflow', limit: 'max_pending_requests' });
    const overflow = new MeshError('OVERFLOW');
    assert.equal(overflow.status, 503);
    assert.equal(overflow.flag, 'UO');
    assert.equal(overflow.headers?.['x-envoy-overloaded'], 'true');
    assert.equal(overflow.retriable, false);
  });

  it('a waiter that gives up leaves the queue; a late cancel gives the connection back', async () => {
    const l = limits({ tcp: { maxConnections: 1 } });
    const first = go(l.admit());
    const q1 = l.admit() as Extract<Admission, { kind: 'queue' }>;
    const q2 = l.admit() as Extract<Admission, { kind: 'queue' }>;
    q1.cancel();
    assert.deepEqual(await q1.ready, { kind: 'cancelled' });
    assert.equal(l.state().pending, 1);
    first.release();
    assert.equal((await q2.ready).kind, 'go');
    q2.cancel(); // too late: the connection it was given goes back
    assert.equal(l.state().active, 0);
  });

  it('HTTP/2 multiplexes: maxConnections × maxConcurrentStreams tries before anything waits', () => {
    const l = limits({ tcp: { maxConnections: 2 }, http: { maxConcurrentStreams: 3 } }, undefined, 'h2');
    for (let i = 0; i < 6; i++) go(l.admit());
    assert.equal(l.admit().kind, 'queue');
  });

  it('reconfigure keeps what is in flight and lets waiters in when limits grow', async () => {
    const l = limits({ tcp: { maxConnections: 1 } });
    go(l.admit());
    const q = l.admit() as Extract<Admission, { kind: 'queue' }>;
    l.reconfigure(parseCircuitLimitsConfig({ tcp: { maxConnections: 2 } }));
    assert.equal((await q.ready).kind, 'go');
    assert.equal(l.state().active, 2);
  });
});

describe('retries', () => {
  it('over http.maxRetries: the retry is skipped silently, and allowed again when one ends', () => {
    const l = limits({ http: { maxRetries: 2 } });
    const r1 = l.beginRetry()!;
    assert.ok(l.beginRetry());
    assert.equal(l.retryAllowed(), false);
    assert.equal(l.beginRetry(), undefined);
    assert.equal(l.state().retryOverflow, 1);
    r1.release();
    r1.release();
    assert.equal(l.state().retries, 1);
    assert.ok(l.beginRetry());
  });

  it('Istio’s default allows any number of concurrent retries', () => {
    const l = limits(undefined);
    for (let i = 0; i < 10_000; i++) assert.ok(l.beginRetry());
  });

  it('a retry budget replaces maxRetries: 20 % of active + pending, at least 3', () => {
    const l = limits({ tcp: { maxConnections: 20 }, http: { maxRetries: 1 } }, {});
    const tries: Go[] = [];
    for (let i = 0; i < 20; i++) tries.push(go(l.admit()));
    for (let i = 0; i < 5; i++) l.admit(); // 5 pending: 25 requests in all
    const retries = [];
    for (let i = 0; i < 5; i++) retries.push(l.beginRetry());
    assert.ok(retries.every(Boolean), '20 % of 25 = 5, despite maxRetries: 1');
    assert.equal(l.beginRetry(), undefined);
    for (const t of tries.slice(0, 10)) t.release(); // pending ones get in: 15 requests in all
    retries.forEach((r) => r!.release());
    for (let i = 0; i < 3; i++) assert.ok(l.beginRetry(), '⌊20 % of 15⌋ = 3');
    assert.equal(l.beginRetry(), undefined);
  });
});
