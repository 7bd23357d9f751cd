// Compile with resilience: ejected endpoints leave the balancer, state survives snapshot swaps, bad configs NACK.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.ts';
import { seededRandom } from '../core/random.ts';
import { WIRE_FORMAT, type ClusterConfig, type ProxySnapshot } from '../wire/snapshot.ts';
import { parseCircuitLimitsConfig, parseOutlierConfig } from '../translate/resilience.ts';
import { compileSnapshot, type CompiledCluster, type RuntimeConfig } from './compile.ts';
import { EndpointStates } from './upstream/endpoints.ts';
import { MeshMetrics } from './observe/metrics.ts';

const NAME = 'outbound|80||m.default.svc.cluster.local';

function snapshot(version: number, ports: number[], extra: Partial<ClusterConfig> = {}, clusters: ClusterConfig[] = []): ProxySnapshot {
  return {
    wire: WIRE_FORMAT,
    version,
    proxy: { id: 'p', kind: 'sidecar', workload: 'c', namespace: 'default', app: 'c', version: 'v1', serviceAccount: 'default', identity: 'spiffe://cluster.local/ns/default/sa/default', labels: {} },
    outbound: { virtualHosts: [{ name: 'm:80', domains: ['m'], routes: [{ name: 'r', match: [], action: { kind: 'route', destinations: [{ cluster: NAME, weight: 1 }] } }] }] },
    clusters: [
      {
        name: NAME,
        service: { host: 'm.default.svc.cluster.local', name: 'm', namespace: 'default', port: 80 },
        lb: { simple: 'ROUND_ROBIN' },
        protocol: 'http1',
        endpoints: ports.map((port) => ({ host: '127.0.0.1', port, weight: 1, workload: 'm', namespace: 'default', app: 'm', version: 'v1', identity: 'x', sidecar: false })),
        ...extra,
      },
      ...clusters,
    ],
  };
}

function harness() {
  const endpoints = new EndpointStates();
  const clock = new ManualClock(0);
  const deps = { endpoints, metrics: new MeshMetrics(), random: seededRandom(1), clock };
  return { endpoints, clock, compile: (s: ProxySnapshot) => compileSnapshot(s, deps) };
}

const cluster = (rt: RuntimeConfig): CompiledCluster => rt.domains.get('m')!.routes[0].destinations[0].cluster;
const picks = (c: CompiledCluster, n: number) => Array.from({ length: n }, () => {
  const p = c.balancer.pick({});
  return p.kind === 'picked' ? p.endpoint.key : p.code;
});

test('an ejected endpoint leaves the balancer at once; all ejected is no healthy upstream; its return puts it back', async () => {
  const h = harness();
  const outlierDetection = parseOutlierConfig({ consecutive5xxErrors: 2, maxEjectionPercent: 100, baseEjectionTime: '1s', interval: '1s' });
  const c = cluster(h.compile(snapshot(1, [1, 2], { outlierDetection })));
  assert.deepEqual(new Set(picks(c, 4)), new Set(['127.0.0.1:1', '127.0.0.1:2']));
  c.state.record('127.0.0.1:1', { kind: 'response', status: 500 });
  c.state.record('127.0.0.1:1', { kind: 'local', code: 'UPSTREAM_CONNECT_FAILURE' });
  assert.deepEqual(new Set(picks(c, 4)), new Set(['127.0.0.1:2']));
  c.state.record('127.0.0.1:2', { kind: 'response', status: 503 });
  c.state.record('127.0.0.1:2', { kind: 'response', status: 503 });
  assert.deepEqual(picks(c, 2), ['NO_HEALTHY_UPSTREAM', 'NO_HEALTHY_UPSTREAM']);
  h.clock.advance(1000);
  c.state.outlier!.sweep();
  c.state.generation++; // what the interval timer does when endpoints come back
  assert.deepEqual(new Set(picks(c, 4)), new Set(['127.0.0.1:1', '127.0.0.1:2']));
  await h.endpoints.closeAll();
});

test('limits, ejections and counts survive a snapshot swap that keeps the cluster; a changed outlier config starts afresh', async () => {
  const h = harness();
  const outlierDetection = parseOutlierConfig({ consecutive5xxErrors: 1, maxEjectionPercent: 50 });
  const limits = parseCircuitLimitsConfig({ http: { http2MaxRequests: 1 } });
  const first = cluster(h.compile(snapshot(1, [1, 2], { outlierDetection, limits })));
  const go = first.state.admit();
  assert.equal(go.kind, 'go');
  first.state.record('127.0.0.1:1', { kind: 'response', status: 500 });
  // Same cluster, one more endpoint: same state, the ejection stays, the in-flight try still counts.
  const second = cluster(h.compile(snapshot(2, [1, 2, 3], { outlierDetection, limits })));
  assert.equal(second.state, first.state);
  assert.ok(second.state.outlier!.isEjected('127.0.0.1:1'));
  assert.equal(second.state.admit().kind, 'overflow');
  if (go.kind === 'go') go.release();
  assert.equal(second.state.admit().kind, 'go');
  assert.ok(!picks(second, 6).includes('127.0.0.1:1'));
  const third = cluster(h.compile(snapshot(3, [1, 2, 3], { outlierDetection: { ...outlierDetection, consecutive5xx: 2 }, limits })));
  assert.ok(!third.state.outlier!.isEjected('127.0.0.1:1'));
  // A cluster the snapshot no longer has is dropped; without outlierDetection there is no detector.
  const fourth = cluster(h.compile(snapshot(4, [1, 2])));
  assert.equal(fourth.state.outlier, undefined);
  assert.equal(fourth.state.limits, undefined);
  await h.endpoints.closeAll();
});

test('resilience configs that cannot be used are refused when compiled (the proxy NACKs)', async () => {
  const h = harness();
  const limits = parseCircuitLimitsConfig({});
  assert.throws(() => h.compile(snapshot(1, [1], { limits: { ...limits, streamsPerConnection: 0 } })), /streamsPerConnection/);
  assert.throws(() => h.compile(snapshot(1, [1], { outlierDetection: { ...parseOutlierConfig({}), intervalMs: 0 } })), /intervalMs/);
  assert.throws(() => h.compile(snapshot(1, [1], { fallback: { policy: 'default/p', on: ['timeout'], route: { cluster: 'nowhere' } } })), /route cluster nowhere/);
  assert.throws(() => h.compile(snapshot(1, [1], { fallback: { policy: 'default/p', on: ['sometimes' as 'timeout'], response: { status: 200, headers: {}, body: '' } } })), /triggers/);
  const ok = h.compile(snapshot(2, [1], { limits, fallback: { policy: 'default/p', on: ['timeout'], cache: { ttlMs: 1000, maxEntries: 1, maxBytes: 100, keyHeaders: [], keyBody: true } } }));
  assert.ok(cluster(ok).fallback?.cache());
  // A NACKed snapshot changes no state: its limits are checked, never committed.
  const tighter = { ...limits, maxRequests: 1 };
  assert.throws(() => h.compile(snapshot(3, [1], { limits: tighter, fallback: { policy: 'default/p', on: ['timeout'], route: { cluster: 'nowhere' } } })));
  assert.equal(cluster(ok).state.limits?.config.maxRequests, limits.maxRequests);
  await h.endpoints.closeAll();
});

test('metrics: ejections and Envoy’s cluster stats in /metrics', async () => {
  const h = harness();
  const metrics = new MeshMetrics();
  const rt = compileSnapshot(snapshot(1, [1, 2], { outlierDetection: parseOutlierConfig({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }), limits: parseCircuitLimitsConfig({}) }), {
    endpoints: h.endpoints,
    metrics,
    random: seededRandom(1),
    clock: h.clock,
  });
  cluster(rt).state.record('127.0.0.1:2', { kind: 'local', code: 'UPSTREAM_RESET' });
  const text = metrics.render();
  assert.match(text, /weft_outlier_ejected\{cluster_name="outbound\|80\|\|m\.default\.svc\.cluster\.local",endpoint="127\.0\.0\.1:2",reason="consecutive_5xx"\} 1/);
  assert.match(text, /envoy_cluster_outlier_detection_ejections_active\{cluster_name="[^"]+"\} 1/);
  assert.match(text, /envoy_cluster_upstream_rq_pending_overflow\{cluster_name="[^"]+"\} 0/);
  assert.match(text, /# TYPE weft_fallback_total counter/);
  await h.endpoints.closeAll();
});

test('useClientProtocol: a non-boolean is refused (NACK); true gives each endpoint a pool per protocol', async () => {
  const h = harness();
  assert.throws(() => h.compile(snapshot(1, [1], { useClientProtocol: 'yes' as unknown as boolean })), /useClientProtocol "yes" is not true or false/);
  const [e] = cluster(h.compile(snapshot(2, [1], { useClientProtocol: true }))).byKey.values();
  assert.ok(e.state.h2Pool);
  const [plain] = cluster(h.compile(snapshot(3, [1], { useClientProtocol: false }))).byKey.values();
  assert.equal(plain.state.h2Pool, undefined);
  await h.endpoints.closeAll();
});
