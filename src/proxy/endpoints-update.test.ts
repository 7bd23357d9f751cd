// Endpoint updates: applied to the current snapshot, they recompile only what they touch.

import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.ts';
import { seededRandom } from '../core/random.ts';
import { WIRE_FORMAT, type ClusterConfig, type EndpointConfig, type EndpointsUpdate, type ProxySnapshot } from '../wire/snapshot.ts';
import { compileSnapshot, type RuntimeConfig } from './compile.ts';
import { withEndpoints } from './endpoints-update.ts';
import { EndpointStates } from './upstream/endpoints.ts';
import { MeshMetrics } from './observe/metrics.ts';

const endpoint = (port: number): EndpointConfig => ({ host: '127.0.0.1', port, weight: 1, workload: 'w', namespace: 'default', app: 'w', version: 'v1', identity: 'x', sidecar: false });

function clusterConfig(name: string, ports: number[], extra: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: `outbound|80||${name}`,
    service: { host: name, name, namespace: 'default', port: 80 },
    lb: { simple: 'ROUND_ROBIN' },
    protocol: 'http1',
    endpoints: ports.map(endpoint),
    ...extra,
  };
}

/** Three services a, b, c, each with its own host and cluster; c falls back to b. */
function snapshot(): ProxySnapshot {
  const vhost = (n: string) => ({ name: `${n}:80`, domains: [n], routes: [{ name: n, match: [], action: { kind: 'route' as const, destinations: [{ cluster: `outbound|80||${n}`, weight: 1 }] } }] });
  return {
    wire: WIRE_FORMAT,
    version: 1,
    proxy: { id: 'p', kind: 'edge', workload: 'edge', namespace: 'default', app: 'edge', version: 'v1', serviceAccount: 'default', identity: 'x', labels: {} },
    outbound: { virtualHosts: ['a', 'b', 'c'].map(vhost) },
    clusters: [
      clusterConfig('a', [1001]),
      clusterConfig('b', [2001, 2002]),
      clusterConfig('c', [3001], { fallback: { policy: 'default/fb', on: ['5xx'], route: { cluster: 'outbound|80||b' } } }),
    ],
  };
}

/** An update to version `version` of the snapshot at `base` (snapshot() is version 1). */
const update = (version: number, clusters: EndpointsUpdate['clusters'], base = 1): EndpointsUpdate => ({ type: 'endpoints', wire: WIRE_FORMAT, version, base, clusters });

function harness() {
  const deps = { endpoints: new EndpointStates(), metrics: new MeshMetrics(), random: seededRandom(1), clock: new ManualClock(0) };
  return (s: ProxySnapshot, previous?: RuntimeConfig) => compileSnapshot(s, deps, previous);
}

const picks = (rt: RuntimeConfig, host: string, n: number) =>
  Array.from({ length: n }, () => {
    const p = rt.domains.get(host)!.routes[0].destinations[0].cluster.balancer.pick({});
    return p.kind === 'picked' ? p.endpoint.key : p.code;
  });

test('an endpoint update replaces the named clusters’ endpoints and shares everything else with the current snapshot', () => {
  const s1 = snapshot();
  const s2 = withEndpoints(s1, update(7, [{ name: 'outbound|80||a', endpoints: [endpoint(1002)] }]));
  assert.equal(s2.version, 7);
  assert.deepEqual(s2.clusters[0]!.endpoints, [endpoint(1002)]);
  assert.notEqual(s2.clusters[0], s1.clusters[0]);
  assert.equal(s2.clusters[1], s1.clusters[1]);
  assert.equal(s2.clusters[2], s1.clusters[2]);
  assert.equal(s2.outbound, s1.outbound);
  assert.deepEqual(s1.clusters[0]!.endpoints, [endpoint(1001)], 'the current snapshot is not changed');
});

test('an endpoint update that does not fit the proxy’s configuration is refused (NACK) with the reason', () => {
  const s1 = snapshot();
  assert.throws(() => withEndpoints(undefined, update(2, [])), /came before any configuration/);
  assert.throws(() => withEndpoints(s1, update(2, [{ name: 'outbound|80||zzz', endpoints: [] }])), /clusters this proxy does not have: outbound\|80\|\|zzz/);
  assert.throws(() => withEndpoints(s1, { ...update(2, []), wire: 9 as typeof WIRE_FORMAT }), /wire format 9/);
  assert.throws(() => withEndpoints(s1, { ...update(2, []), clusters: null as never }), /no list of clusters/);
  assert.throws(() => withEndpoints(s1, update(2, [{ name: 'outbound|80||a', endpoints: 'x' as never }])), /needs a name and a list of endpoints/);
  assert.throws(() => withEndpoints(s1, update(2.5, [])), /no integer version/);
  // Made against another version than the proxy runs (one it refused, say): refused in turn.
  assert.throws(() => withEndpoints(s1, update(3, [], 2)), /applies to version 2, and this proxy runs version 1/);
});

test('compiling an endpoint update reuses every cluster and route it does not touch, and traffic goes to the new endpoints', () => {
  const compile = harness();
  const s1 = snapshot();
  const rt1 = compile(s1);
  assert.deepEqual(new Set(picks(rt1, 'a', 2)), new Set(['127.0.0.1:1001']));

  const rt2 = compile(withEndpoints(s1, update(2, [{ name: 'outbound|80||a', endpoints: [endpoint(1002), endpoint(1003)] }])), rt1);
  assert.notEqual(rt2.clusters.get('outbound|80||a'), rt1.clusters.get('outbound|80||a'));
  assert.equal(rt2.clusters.get('outbound|80||b'), rt1.clusters.get('outbound|80||b'));
  assert.equal(rt2.clusters.get('outbound|80||c'), rt1.clusters.get('outbound|80||c'));
  assert.notEqual(rt2.virtualHosts[0], rt1.virtualHosts[0], 'a’s routes point at a’s new cluster');
  assert.equal(rt2.virtualHosts[1], rt1.virtualHosts[1]);
  assert.equal(rt2.domains.get('b'), rt1.domains.get('b'));
  assert.deepEqual(new Set(picks(rt2, 'a', 4)), new Set(['127.0.0.1:1002', '127.0.0.1:1003']));
  assert.deepEqual(new Set(picks(rt1, 'a', 2)), new Set(['127.0.0.1:1001']), 'requests that started on the old tables keep them');
});

test('a cluster whose fallback routes to an updated cluster is compiled again, so its fallback uses the new endpoints', () => {
  const compile = harness();
  const s1 = snapshot();
  const rt1 = compile(s1);
  const rt2 = compile(withEndpoints(s1, update(2, [{ name: 'outbound|80||b', endpoints: [endpoint(2003)] }])), rt1);
  const c1 = rt1.clusters.get('outbound|80||c')!;
  const c2 = rt2.clusters.get('outbound|80||c')!;
  assert.notEqual(c2, c1, 'c falls back to b, which changed');
  assert.equal(c2.fallback?.route, rt2.clusters.get('outbound|80||b'));
  assert.equal(rt2.clusters.get('outbound|80||a'), rt1.clusters.get('outbound|80||a'));
  assert.notEqual(rt2.virtualHosts[2], rt1.virtualHosts[2], 'c’s routes point at c’s new cluster');
});

test('a whole new snapshot reuses nothing, even with equal content', () => {
  const compile = harness();
  const rt1 = compile(snapshot());
  const rt2 = compile(snapshot(), rt1);
  for (const [name, c] of rt2.clusters) assert.notEqual(c, rt1.clusters.get(name));
  assert.notEqual(rt2.virtualHosts[1], rt1.virtualHosts[1]);
});

test('a chain of endpoint updates does not keep the snapshots it replaced alive', async () => {
  // Clusters compiled in one version are reused by later ones; they must not hold their version's snapshot.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const compile = harness();
  let s = snapshot();
  let rt = compile(s);
  const replaced: WeakRef<ProxySnapshot>[] = [];
  for (let v = 2; v < 8; v++) {
    replaced.push(new WeakRef(s));
    const name = `outbound|80||${'abc'[v % 3]}`;
    s = withEndpoints(s, update(v, [{ name, endpoints: [endpoint(4000 + v)] }], v - 1));
    rt = compile(s, rt);
  }
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  assert.deepEqual(replaced.map((r) => r.deref() === undefined), replaced.map(() => true));
  assert.equal(rt.version, 7);
});
