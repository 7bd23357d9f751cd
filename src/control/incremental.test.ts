// Incremental pushes: which changes are endpoint-only, and endpoint updates that add up to a full translation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseText } from '../api/index.ts';
import type { Resource } from '../api/types.ts';
import { buildRegistry } from '../registry/registry.ts';
import { endpointContext, translate } from '../translate/translate.ts';
import type { ProxyNode, ProxySnapshot } from '../wire/snapshot.ts';
import { withEndpoints } from '../proxy/endpoints-update.ts';
import { endpointChanges, onlyEndpointsDiffer, sentClusters } from './incremental.ts';

const proxy: ProxyNode = {
  id: 'weft-system/edge', kind: 'edge', workload: 'edge', namespace: 'weft-system', app: 'edge', version: 'v1', serviceAccount: 'edge',
  identity: 'spiffe://cluster.local/ns/weft-system/sa/edge', labels: {},
};

const entry = (name: string, version: string, address: string, weight = 1) => `
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}, namespace: default}
spec: {address: ${address}, labels: {app: model, version: ${version}}, weight: ${weight}}
`;

const config = (vsWeight = 90) => `
apiVersion: v1
kind: Service
metadata: {name: model, namespace: default}
spec: {selector: {app: model}, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model, namespace: default}
spec:
  host: model
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model, namespace: default}
spec:
  hosts: [model]
  http: [{route: [{destination: {host: model, subset: v1}, weight: ${vsWeight}}, {destination: {host: model, subset: v2}, weight: ${100 - vsWeight}}]}]
`;

const load = (text: string): Resource[] => {
  const r = parseText(text, 'mesh.yaml');
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  return r.resources;
};

const full = (resources: readonly Resource[]): ProxySnapshot =>
  translate({ resources, registry: buildRegistry(resources, []), proxy, version: 0 });

test('endpoint-only changes: WorkloadEntries added, removed or edited; anything else, or a new order, is not', () => {
  const base = load(config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2'));
  assert.equal(onlyEndpointsDiffer(base, load(config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2'))), true, 'the same files read again');
  assert.equal(onlyEndpointsDiffer(base, load('\n\n' + config() + '---' + entry('a', 'v1', '10.0.0.1'))), true, 'moved lines, one entry fewer');
  assert.equal(onlyEndpointsDiffer(base, load(config() + '---' + entry('a', 'v1', '10.0.0.1', 5) + '---' + entry('b', 'v2', '10.0.0.2'))), true, 'a weight');
  assert.equal(onlyEndpointsDiffer(base, load(config(50) + '---' + entry('a', 'v1', '10.0.0.1'))), false, 'a route weight');
  const [service, rule, vs] = base;
  assert.equal(onlyEndpointsDiffer(base, [service!, vs!, rule!]), false, 'order');
  assert.equal(onlyEndpointsDiffer(base, [service!, rule!]), false, 'a VirtualService gone');
});

test('endpoint updates carry exactly the clusters that changed, and applied in turn give what a full translation gives', () => {
  const states = [
    config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2'),
    config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2', 3), // b's weight
    config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2', 3) + '---' + entry('c', 'v1', '10.0.0.3'), // c joins v1
    config() + '---' + entry('c', 'v1', '10.0.0.3'), // a and b leave
  ].map(load);
  let applied = full(states[0]!);
  const sent = sentClusters(applied.clusters, buildRegistry(states[0]!, []));
  const changedNames: string[][] = [];
  for (const resources of states.slice(1)) {
    const ctx = endpointContext(resources, buildRegistry(resources, []), proxy.namespace);
    const changes = endpointChanges(sent, ctx, new Map());
    changedNames.push(changes.map((c) => c.name.split('|')[2]!).sort());
    applied = withEndpoints(applied, { type: 'endpoints', wire: 1, version: applied.version + 1, base: applied.version, clusters: changes });
    assert.deepEqual(applied.clusters, full(resources).clusters);
    assert.deepEqual(endpointChanges(sent, ctx, new Map()), [], 'nothing more to send for the same state');
  }
  // The VirtualService sends to the subsets only, so those are the clusters there are.
  assert.deepEqual(changedNames, [['v2'], ['v1'], ['v1', 'v2']]);
  assert.deepEqual(applied.clusters.find((c) => c.subset === 'v1')!.endpoints.map((e) => `${e.host}:${e.port}`), ['10.0.0.3:8080']);
});

test('with the unchanged resources the very same objects (as the control plane keeps them), only clusters of services whose endpoints changed are worked out again', () => {
  const base = load(config() + '---' + entry('a', 'v1', '10.0.0.1') + '---' + entry('b', 'v2', '10.0.0.2') + '---' + entry('c', 'v2', '10.0.0.3'));
  const registry = buildRegistry(base, []);
  const first = translate({ resources: base, registry, proxy, version: 0 });
  const sent = sentClusters(first.clusters, registry);
  const b = base.find((r) => r.metadata.name === 'b')!;
  const next = base.map((r) => (r === b ? { ...b, spec: { ...(b.spec as object), weight: 7 } } : r)) as Resource[];
  const ctx = endpointContext(next, buildRegistry(next, []), proxy.namespace);
  const computed = new Map();
  const changes = endpointChanges(sent, ctx, computed);
  assert.deepEqual(changes.map((c) => c.name.split('|')[2]), ['v2']);
  assert.deepEqual(changes[0]!.endpoints.map((e) => e.weight), [7, 1]);
  assert.deepEqual(withEndpoints({ ...first, version: 1 }, { type: 'endpoints', wire: 1, version: 2, base: 1, clusters: changes }).clusters, full(next).clusters);
  // Nothing changed since: the same registry records, nothing worked out at all.
  const again = new Map();
  assert.deepEqual(endpointChanges(sent, endpointContext(next, buildRegistry(next, []), proxy.namespace), again), []);
  assert.equal(again.size, 0);
});
