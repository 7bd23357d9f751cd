// Configuration deltas on the proxy: applied to the current snapshot, they recompile only what they touch.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.ts';
import { seededRandom } from '../core/random.ts';
import { WIRE_FORMAT, type ClusterConfig, type ConfigDelta, type ProxySnapshot, type VirtualHostConfig } from '../wire/snapshot.ts';
import { compileSnapshot, findVirtualHost, type RuntimeConfig } from './compile.ts';
import { withDelta } from './config-delta.ts';
import { EndpointStates } from './upstream/endpoints.ts';
import { MeshMetrics } from './observe/metrics.ts';

const cluster = (n: string, port = 1000): ClusterConfig => ({
  name: `outbound|80||${n}`,
  service: { host: n, name: n, namespace: 'default', port: 80 },
  lb: { simple: 'ROUND_ROBIN' },
  protocol: 'http1',
  endpoints: [{ host: '127.0.0.1', port, weight: 1, workload: n, namespace: 'default', app: n, version: 'v1', identity: 'x', sidecar: false }],
});

/** A virtual host `n:80` for the domains given (default: `n`) that sends everything to `to`'s cluster. */
const vhost = (n: string, to = n, domains = [n], timeoutMs?: number): VirtualHostConfig => ({
  name: `${n}:80`,
  domains,
  routes: [{ name: n, match: [], action: { kind: 'route', destinations: [{ cluster: `outbound|80||${to}`, weight: 1 }], ...(timeoutMs ? { timeoutMs } : {}) } }],
});

function snapshot(): ProxySnapshot {
  return {
    wire: WIRE_FORMAT,
    version: 1,
    proxy: { id: 'p', kind: 'edge', workload: 'edge', namespace: 'default', app: 'edge', version: 'v1', serviceAccount: 'default', identity: 'x', labels: {} },
    outbound: { virtualHosts: [vhost('a'), vhost('b'), vhost('c')] },
    clusters: [cluster('a'), cluster('b'), cluster('c')],
  };
}

const delta = (d: Partial<ConfigDelta>): ConfigDelta => ({
  type: 'delta', wire: WIRE_FORMAT, version: 2, base: 1, virtualHosts: [], removedVirtualHosts: [], clusters: [], removedClusters: [], ...d,
});

function harness() {
  const deps = { endpoints: new EndpointStates(), metrics: new MeshMetrics(), random: seededRandom(1), clock: new ManualClock(0) };
  return (s: ProxySnapshot, previous?: RuntimeConfig) => compileSnapshot(s, deps, previous);
}

test('a delta replaces, removes and adds virtual hosts and clusters, and shares everything else with the current snapshot', () => {
  const s1 = snapshot();
  const s2 = withDelta(s1, delta({ virtualHosts: [vhost('b', 'b', ['b'], 5000), vhost('d')], removedVirtualHosts: ['c:80'], clusters: [cluster('d')], removedClusters: ['outbound|80||c'] }));
  assert.equal(s2.version, 2);
  assert.deepEqual(s2.outbound.virtualHosts.map((v) => v.name), ['a:80', 'b:80', 'd:80'], 'replaced in place, new ones last');
  assert.deepEqual(s2.clusters.map((c) => c.name), ['outbound|80||a', 'outbound|80||b', 'outbound|80||d']);
  assert.equal(s2.outbound.virtualHosts[0], s1.outbound.virtualHosts[0]);
  assert.equal(s2.clusters[1], s1.clusters[1]);
  assert.equal(s2.proxy, s1.proxy);
  assert.equal((s2.outbound.virtualHosts[1]!.routes[0]!.action as { timeoutMs?: number }).timeoutMs, 5000);
  assert.equal(s1.outbound.virtualHosts.length, 3, 'the current snapshot is left as it was');

  // An order: the first virtual host to claim a domain gets it.
  const s3 = withDelta(s1, delta({ virtualHosts: [vhost('z', 'a', ['b'])], virtualHostOrder: ['z:80', 'a:80', 'b:80', 'c:80'] }));
  assert.deepEqual(s3.outbound.virtualHosts.map((v) => v.name), ['z:80', 'a:80', 'b:80', 'c:80']);
});

test('compiled: what a delta leaves alone is reused, what it changes and what refers to a changed cluster is compiled anew', () => {
  const compile = harness();
  const s1 = snapshot();
  const rt1 = compile(s1);
  const rt2 = compile(withDelta(s1, delta({ virtualHosts: [vhost('a', 'a', ['a'], 100)], clusters: [cluster('b', 2000)] })), rt1);
  assert.notEqual(rt2.virtualHosts[0], rt1.virtualHosts[0], 'the changed virtual host');
  assert.notEqual(rt2.virtualHosts[1], rt1.virtualHosts[1], 'b refers to the changed cluster b');
  assert.equal(rt2.virtualHosts[2], rt1.virtualHosts[2], 'c is untouched');
  assert.equal(rt2.clusters.get('outbound|80||c'), rt1.clusters.get('outbound|80||c'));
  assert.notEqual(rt2.clusters.get('outbound|80||b'), rt1.clusters.get('outbound|80||b'));
  assert.deepEqual(findVirtualHost(rt2, 'a')!.routes[0]!.config.action, { kind: 'route', destinations: [{ cluster: 'outbound|80||a', weight: 1 }], timeoutMs: 100 });
  const picked = rt2.domains.get('b')!.routes[0]!.destinations[0]!.cluster.balancer.pick({});
  assert.equal(picked.kind === 'picked' && picked.endpoint.key, '127.0.0.1:2000');

  // Reordered: a kept virtual host is found by its config, wherever it now is.
  const rt3 = compile(withDelta(rt2.snapshot, delta({ version: 3, base: 2, virtualHostOrder: ['c:80', 'b:80', 'a:80'] })), rt2);
  assert.deepEqual(rt3.virtualHosts, [rt2.virtualHosts[2], rt2.virtualHosts[1], rt2.virtualHosts[0]]);
});

test('a delta that does not fit the snapshot the proxy runs is refused, and the snapshot is left as it was', () => {
  const s1 = snapshot();
  const refused: Array<[Partial<ConfigDelta>, RegExp]> = [
    [{ base: 7 }, /applies to version 7, and this proxy runs version 1/],
    [{ wire: 9 as typeof WIRE_FORMAT }, /wire format 9/],
    [{ version: 2.5 }, /no integer version/],
    [{ clusters: null as never }, /no list of clusters/],
    [{ removedClusters: ['outbound|80||zzz'] }, /clusters to remove that this proxy does not have: outbound\|80\|\|zzz/],
    [{ removedVirtualHosts: ['a:80'], virtualHosts: [vhost('a')] }, /virtual host a:80 is both removed and sent/],
    [{ virtualHosts: [vhost('a'), vhost('a')] }, /virtual host a:80 is sent twice/],
    [{ clusters: [{ ...cluster('a'), name: 1 as never }] }, /cluster without a name/],
    [{ virtualHostOrder: ['a:80', 'b:80', 'q:80'] }, /orders virtual host q:80, which it neither keeps nor sends/],
    [{ virtualHostOrder: ['a:80', 'b:80'] }, /names 2 virtual hosts, and there are 3/],
    [{ virtualHostOrder: 'a:80' as never }, /virtualHostOrder is not a list/],
  ];
  for (const [d, error] of refused) assert.throws(() => withDelta(s1, delta(d)), error, JSON.stringify(d));
  assert.throws(() => withDelta(undefined, delta({})), /came before any configuration/);
  assert.deepEqual(s1, snapshot());
});
