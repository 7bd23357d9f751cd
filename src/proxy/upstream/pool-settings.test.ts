// Pool settings from a DestinationRule's connectionPool: what each pool gets, and which clusters share a pool.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCircuitLimitsConfig } from '../../translate/resilience.ts';
import type { ClusterConfig } from '../../wire/snapshot.ts';
import { h1Options, h2Options, keepalive, poolId, poolSettings } from './pool-settings.ts';

/** A cluster whose DestinationRule sets `connectionPool` (Istio's field names and durations). */
const cluster = (connectionPool: unknown, protocol: 'http1' | 'h2' = 'http1'): ClusterConfig =>
  ({ name: 'c', protocol, endpoints: [], limits: parseCircuitLimitsConfig(connectionPool, undefined, { protocol }) }) as unknown as ClusterConfig;
const settings = (connectionPool: unknown, protocol: 'http1' | 'h2' = 'http1') => poolSettings(cluster(connectionPool, protocol))!;

test('a cluster without connectionPool keeps the defaults and the default pool', () => {
  const p = poolSettings({ name: 'c', protocol: 'http1', endpoints: [] } as unknown as ClusterConfig);
  assert.equal(p, undefined);
  assert.equal(poolId(p), '');
  assert.deepEqual(h1Options(p), {});
  assert.deepEqual(h2Options(p), {});
});

test('maxConnectionDuration: unset is no limit; set, it becomes the HTTP/1.1 connection and HTTP/2 session duration', () => {
  const none = settings({ tcp: { maxConnections: 5 } });
  assert.equal(none.maxConnectionDurationMs, 0);
  assert.equal(h1Options(none).maxConnectionDurationMs, 0);
  assert.equal(h2Options(none).maxSessionDurationMs, undefined);
  // (Istio rejects an explicit 0s: it must be at least 1 ms.)
  assert.throws(() => settings({ tcp: { maxConnectionDuration: '0s' } }));

  const p = settings({ tcp: { maxConnectionDuration: '1.5s' } }, 'h2');
  assert.equal(p.maxConnectionDurationMs, 1500);
  assert.equal(h1Options(p).maxConnectionDurationMs, 1500);
  assert.equal(h2Options(p).maxSessionDurationMs, 1500);
  // Longer than a Node timer can wait: capped (a longer timer would fire at once).
  assert.equal(h2Options(settings({ tcp: { maxConnectionDuration: '720h' } }, 'h2')).maxSessionDurationMs, 2_147_483_647);
});

test('tcpKeepalive: time in whole seconds (rounded up, capped at Linux’s maximum); no time = the OS’s; unset = off', () => {
  assert.equal(settings({ tcp: { maxConnections: 5 } }).tcpKeepaliveMs, undefined);
  assert.equal(settings({ tcp: { tcpKeepalive: {} } }).tcpKeepaliveMs, 0);
  assert.equal(settings({ tcp: { tcpKeepalive: { probes: 3, interval: '10s' } } }).tcpKeepaliveMs, 0);
  assert.equal(settings({ tcp: { tcpKeepalive: { time: '7s' } } }).tcpKeepaliveMs, 7000);
  assert.equal(settings({ tcp: { tcpKeepalive: { time: '500ms' } } }).tcpKeepaliveMs, 1000);
  assert.equal(settings({ tcp: { tcpKeepalive: { time: '1.2s' } } }).tcpKeepaliveMs, 2000);
  assert.equal(settings({ tcp: { tcpKeepalive: { time: '100h' } } }).tcpKeepaliveMs, 32_767_000);
  // interval in whole seconds like time; probes as given, within Linux's 127; absent: Node's.
  const all = settings({ tcp: { tcpKeepalive: { time: '7s', interval: '1500ms', probes: 3 } } });
  assert.deepEqual([all.tcpKeepaliveMs, all.tcpKeepaliveIntervalMs, all.tcpKeepaliveProbes], [7000, 2000, 3]);
  assert.equal(settings({ tcp: { tcpKeepalive: { probes: 1000 } } }).tcpKeepaliveProbes, 127);
  const bare = settings({ tcp: { tcpKeepalive: { time: '7s' } } });
  assert.deepEqual([bare.tcpKeepaliveIntervalMs, bare.tcpKeepaliveProbes], [undefined, undefined]);
  // …and all three reach the socket (Node 24's setKeepAlive(enable, initialDelay, interval, count)).
  const calls: unknown[][] = [];
  keepalive({ setKeepAlive: (...args: unknown[]) => calls.push(args) } as unknown as Parameters<typeof keepalive>[0], all);
  assert.deepEqual(calls, [[true, 7000, 2000, 3]]);
});

test('http2KeepAlive reaches the HTTP/2 sessions', () => {
  const p = settings({ http: { http2KeepAlive: { interval: '2s', timeout: '500ms' } } }, 'h2');
  assert.deepEqual(p.http2KeepAlive, { intervalMs: 2000, timeoutMs: 500 });
  assert.deepEqual(h2Options(p).keepAlive, { intervalMs: 2000, timeoutMs: 500 });
  assert.equal(h2Options(settings({ tcp: { maxConnections: 5 } }, 'h2')).keepAlive, undefined);
});

test('clusters that differ only in one of these settings get pools of their own', () => {
  const pools = [
    {},
    { tcp: { maxConnectionDuration: '1s' } },
    { tcp: { maxConnectionDuration: '2s' } },
    { tcp: { tcpKeepalive: {} } },
    { tcp: { tcpKeepalive: { time: '5s' } } },
    { tcp: { tcpKeepalive: { time: '6s' } } },
    { tcp: { tcpKeepalive: { time: '6s', interval: '2s' } } },
    { tcp: { tcpKeepalive: { time: '6s', probes: 4 } } },
    { http: { http2KeepAlive: { interval: '1s', timeout: '1s' } } },
    { http: { http2KeepAlive: { interval: '1s', timeout: '2s' } } },
    { http: { http2KeepAlive: { interval: '2s', timeout: '1s' } } },
  ].map((c) => poolId(settings(c, 'h2')));
  assert.equal(new Set(pools).size, pools.length, pools.join('\n'));
  // …and equal settings share one.
  assert.equal(poolId(settings({ tcp: { tcpKeepalive: { time: '5s', probes: 3 } } })), poolId(settings({ tcp: { tcpKeepalive: { time: '5s', probes: 3 } } })));
});
