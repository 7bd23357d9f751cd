import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { parseText } from '../api/index.ts';
import { buildRegistry, type WorkloadInstance } from '../registry/registry.ts';
import type { ProxyNode } from '../wire/snapshot.ts';
import { outboundView, routesUseSourceLabels, translate } from './translate.ts';
import { edgeProxyNode } from './gateways.ts';

const dir = new URL('./testdata/', import.meta.url);

function node(app: string, ns = 'default'): ProxyNode {
  return { id: `${ns}/${app}-0`, kind: 'sidecar', workload: app, namespace: ns, app, version: 'v1', serviceAccount: 'default', identity: `spiffe://cluster.local/ns/${ns}/sa/default`, labels: { app } };
}

const instances: WorkloadInstance[] = [
  { id: 'default/s-v1-0', workload: 's-v1', namespace: 'default', labels: { app: 'sentiment-model', version: 'v1' }, serviceAccount: 'sentiment', inbound: { host: '127.0.0.1', port: 7001 }, ready: true },
  { id: 'default/s-v2-0', workload: 's-v2', namespace: 'default', labels: { app: 'sentiment-model', version: 'v2' }, serviceAccount: 'sentiment', inbound: { host: '127.0.0.1', port: 7002 }, ready: true },
  // Not ready yet: must not receive traffic.
  { id: 'default/s-v2-1', workload: 's-v2', namespace: 'default', labels: { app: 'sentiment-model', version: 'v2' }, serviceAccount: 'sentiment', inbound: { host: '127.0.0.1', port: 7003 }, ready: false },
];

async function load(file: string) {
  const text = await readFile(new URL(file, dir), 'utf8');
  const { resources, diagnostics } = parseText(text, file);
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return resources;
}

test('golden: canary.yaml for a client sidecar', async () => {
  const resources = await load('canary.yaml');
  const snap = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 1 });
  const golden = new URL('canary.client.golden.json', dir);
  const actual = JSON.stringify(snap, null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN) await writeFile(golden, actual);
  assert.equal(actual, await readFile(golden, 'utf8'));
});

test('weights are relative, subsets select endpoints by label, unready endpoints are left out', async () => {
  const resources = await load('canary.yaml');
  const snap = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 1 });
  const vh = snap.outbound.virtualHosts.find((v) => v.name === 'sentiment-model.default.svc.cluster.local:80')!;
  assert.deepEqual(vh.domains, [
    'sentiment-model', 'sentiment-model:80',
    'sentiment-model.default', 'sentiment-model.default:80',
    'sentiment-model.default.svc', 'sentiment-model.default.svc:80',
    'sentiment-model.default.svc.cluster.local', 'sentiment-model.default.svc.cluster.local:80',
  ]);
  const split = vh.routes[1].action;
  assert.equal(split.kind, 'route');
  if (split.kind !== 'route') return;
  assert.deepEqual(split.destinations.map((d) => [d.cluster, d.weight]), [
    ['outbound|80|v1|sentiment-model.default.svc.cluster.local', 90],
    ['outbound|80|v2|sentiment-model.default.svc.cluster.local', 10],
  ]);
  assert.equal(split.timeoutMs, 2000);
  const v2 = snap.clusters.find((c) => c.name === 'outbound|80|v2|sentiment-model.default.svc.cluster.local')!;
  assert.deepEqual(v2.endpoints.map((e) => e.port), [7002]);
  assert.equal(v2.endpoints[0].identity, 'spiffe://cluster.local/ns/default/sa/sentiment');
  // The subset's loadBalancer overrides the rule's; the header name is lowercased.
  assert.deepEqual(v2.lb, { consistentHash: { key: { header: 'x-session-id' }, algorithm: { ringHash: { minimumRingSize: 1024 } } } });
  const v1 = snap.clusters.find((c) => c.name === 'outbound|80|v1|sentiment-model.default.svc.cluster.local')!;
  assert.deepEqual(v1.lb, { simple: 'ROUND_ROBIN' });
});

test('sourceLabels choose which proxies get a match: a proxy that does not match never sees the route', async () => {
  const resources = await load('canary.yaml');
  const registry = buildRegistry(resources, instances);
  const forClient = translate({ resources, registry, proxy: node('client'), version: 1 });
  const forOther = translate({ resources, registry, proxy: node('batch-job'), version: 1 });
  const routes = (s: typeof forClient) => s.outbound.virtualHosts.find((v) => v.name.startsWith('sentiment-model'))!.routes.map((r) => r.name);
  assert.deepEqual(routes(forClient), ['default/sentiment-model/0', 'default/sentiment-model/1']);
  assert.deepEqual(routes(forOther), ['default/sentiment-model/1']);
});

test('short names resolve only in their own namespace', async () => {
  const resources = await load('canary.yaml');
  const snap = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client', 'other'), version: 1 });
  const vh = snap.outbound.virtualHosts.find((v) => v.name.startsWith('sentiment-model'))!;
  assert.ok(!vh.domains.includes('sentiment-model'));
  assert.ok(vh.domains.includes('sentiment-model.default'));
});

test('a ServiceEntry with STATIC endpoints: weights and per-port endpoint ports', async () => {
  const resources = await load('canary.yaml');
  const snap = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 1 });
  const http = snap.clusters.find((c) => c.name === 'outbound|80||api.llm.example')!;
  assert.deepEqual(http.endpoints.map((e) => [e.host, e.port, e.weight, e.sidecar]), [
    ['10.0.0.1', 80, 3, false],
    ['10.0.0.2', 8080, 1, false],
  ]);
  const vh = snap.outbound.virtualHosts.find((v) => v.name === 'api.llm.example:80')!;
  assert.deepEqual(vh.domains, ['api.llm.example', 'api.llm.example:80']);
});

test('a host without a VirtualService gets one default route to the whole service', async () => {
  const resources = (await load('canary.yaml')).filter((r) => r.kind !== 'VirtualService');
  const snap = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 1 });
  const vh = snap.outbound.virtualHosts.find((v) => v.name.startsWith('sentiment-model'))!;
  assert.equal(vh.routes.length, 1);
  assert.deepEqual(vh.routes[0].match, []);
  const c = snap.clusters.find((x) => x.name === 'outbound|80||sentiment-model.default.svc.cluster.local')!;
  assert.deepEqual(c.endpoints.map((e) => e.port).sort(), [7001, 7002]);
});

test('translation is pure: same input, same snapshot', async () => {
  const resources = await load('canary.yaml');
  const a = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 3 });
  const b = translate({ resources, registry: buildRegistry(resources, instances), proxy: node('client'), version: 3 });
  assert.deepEqual(a, b);
});

test('the edge serves Gateway-bound rules for the hosts its Gateway accepts; sidecars do not get them', async () => {
  const text = `
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: ingress}
spec:
  selector: {istio: ingressgateway}
  servers:
  - port: {number: 8080, name: http, protocol: HTTP}
    hosts: ["*.example.com"]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: public}
spec:
  hosts: [api.example.com, other.test]
  gateways: [ingress]
  http:
  - directResponse: {status: 204}
`;
  const { resources } = parseText(text, 'gw.yaml');
  const registry = buildRegistry(resources, []);
  const edge = translate({ resources, registry, proxy: edgeProxyNode(), version: 1 });
  assert.deepEqual(edge.outbound.virtualHosts.map((v) => v.name), ['api.example.com:80'], 'other.test is not a host the Gateway accepts');
  const sidecar = translate({ resources, registry, proxy: node('client'), version: 1 });
  assert.deepEqual(sidecar.outbound.virtualHosts, []);
});

test('delegate: the root route is replaced by the delegate’s routes, matches merged, conflicts dropped', async () => {
  const text = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: team}
spec:
  selector: {app: reviews}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: root}
spec:
  hosts: [reviews.team.svc.cluster.local]
  http:
  - name: to-team
    match: [{uri: {prefix: /reviews}, headers: {x-tier: {exact: gold}}}]
    delegate: {name: reviews-routes, namespace: team}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-routes, namespace: team}
spec:
  http:
  - name: v2
    match: [{uri: {prefix: /reviews/v2}}]
    route: [{destination: {host: reviews}}]
  - name: outside
    match: [{uri: {prefix: /ratings}}]
    route: [{destination: {host: reviews}}]
  - name: rest
    route: [{destination: {host: reviews}}]
`;
  const { resources, diagnostics } = parseText(text, 'delegate.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  const snap = translate({ resources, registry: buildRegistry(resources, []), proxy: node('client'), version: 1 });
  const vh = snap.outbound.virtualHosts.find((v) => v.name === 'reviews.team.svc.cluster.local:80')!;
  assert.deepEqual(vh.routes.map((r) => r.name), ['default/root/to-team/team/reviews-routes/v2', 'default/root/to-team/team/reviews-routes/rest']);
  assert.deepEqual(vh.routes[0].match, [{ uri: { prefix: '/reviews/v2' }, headers: [{ name: 'x-tier', match: { exact: 'gold' } }] }]);
  assert.deepEqual(vh.routes[1].match, [{ uri: { prefix: '/reviews' }, headers: [{ name: 'x-tier', match: { exact: 'gold' } }] }]);
  const action = vh.routes[0].action;
  assert.equal(action.kind === 'route' && action.destinations[0].cluster, 'outbound|80||reviews.team.svc.cluster.local', 'the delegate’s short host resolves in its own namespace');
});

test('a ServiceEntry with resolution NONE (the default) dials the host the caller named', async () => {
  const text = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: openai}
spec:
  hosts: [api.openai.example]
  ports: [{number: 443, name: https, protocol: HTTPS}, {number: 80, name: http, protocol: HTTP}]
`;
  const { resources, diagnostics } = parseText(text, 'se.yaml');
  assert.deepEqual(diagnostics, []);
  const snap = translate({ resources, registry: buildRegistry(resources, []), proxy: node('client'), version: 1 });
  const c = snap.clusters.find((x) => x.name === 'outbound|80||api.openai.example')!;
  assert.deepEqual(c.endpoints.map((e) => `${e.host}:${e.port}`), ['api.openai.example:80']);
});

test('clusterCache: clusters made before are reused while their service’s endpoints are the same, and the snapshot is what a fresh translation gives', () => {
  const yaml = (split: string) => `
apiVersion: v1
kind: Service
metadata: {name: sentiment-model}
spec: {selector: {app: sentiment-model}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: small}
spec: {selector: {app: small}, ports: [{name: http, port: 80}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: sentiment-model}
spec:
  host: sentiment-model
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: sentiment-model}
spec:
  hosts: [sentiment-model]
  http: [{route: [${split}]}]
---
apiVersion: weft.dev/v1alpha1
kind: FallbackPolicy
metadata: {name: v2-to-small}
spec: {host: sentiment-model, subset: v2, on: [5xx], route: {host: small}}
`;
  const resourcesOf = (split: string) => parseText(yaml(split), 'mesh.yaml').resources;
  // One instance object per state, as the control plane keeps it until it changes (the registry's records are per object).
  const smalls = new Map<number, WorkloadInstance>();
  const small = (port: number): WorkloadInstance => {
    if (!smalls.has(port)) smalls.set(port, { id: 'default/small-0', workload: 'small', namespace: 'default', labels: { app: 'small' }, serviceAccount: 'small', inbound: { host: '127.0.0.1', port }, ready: true });
    return smalls.get(port)!;
  };
  const proxy = node('client');
  const cache = new Map();
  const run = (split: string, smallPort: number, withCache = true) => {
    const resources = resourcesOf(split);
    const registry = buildRegistry(resources, [...instances, small(smallPort)]);
    return translate({ resources, registry, proxy, version: 1, ...(withCache ? { clusterCache: cache } : {}) });
  };
  const both = '{destination: {host: sentiment-model, subset: v1}, weight: 90}, {destination: {host: sentiment-model, subset: v2}, weight: 10}';
  const s1 = run(both, 7100);
  assert.deepEqual(s1, run(both, 7100, false));
  assert.deepEqual([...cache.keys()].sort(), s1.clusters.map((c) => c.name).sort());

  // Only v2 routed now: its fallback route's cluster comes along from the cache too, in the same place.
  const onlyV2 = '{destination: {host: sentiment-model, subset: v2}}';
  const s2 = run(onlyV2, 7100);
  assert.deepEqual(s2, run(onlyV2, 7100, false));
  for (const c of s2.clusters) assert.equal(c, s1.clusters.find((x) => x.name === c.name), `${c.name} reused`);

  // small's endpoint moved (a new registry, as after any change): its cluster is made again, the rest reused.
  const s3 = run(both, 7200);
  assert.deepEqual(s3, run(both, 7200, false));
  const smallCluster = 'outbound|80||small.default.svc.cluster.local';
  assert.deepEqual(s3.clusters.find((c) => c.name === smallCluster)!.endpoints.map((e) => e.port), [7200]);
  for (const c of s3.clusters) assert.equal(c === s1.clusters.find((x) => x.name === c.name), c.name !== smallCluster, c.name);
});

test('outboundView: what of a proxy its routes depend on — kind, namespace, and labels only where they count', async () => {
  const a = node('alpha');
  const b = node('beta');
  assert.equal(outboundView(a, false), outboundView(b, false), 'without sourceLabels, sidecars of one namespace see the same routes');
  assert.notEqual(outboundView(a, true), outboundView(b, true));
  assert.notEqual(outboundView(a, false), outboundView(node('alpha', 'other'), false));
  const edge = edgeProxyNode();
  assert.notEqual(outboundView(edge, false), outboundView({ ...edge, labels: {} }, false), 'a Gateway selects the edge by its labels');
  assert.equal(outboundView({ ...a, labels: { x: '1', y: '2' } }, true), outboundView({ ...a, labels: { y: '2', x: '1' } }, true), 'label order does not matter');
  const vs = (match: string) => parseText(`apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: d}\nspec:\n  http: [{match: [${match}], route: [{destination: {host: x}}]}]\n`, 'd.yaml').resources;
  assert.equal(routesUseSourceLabels(vs('{headers: {x-a: {exact: "1"}}}')), false);
  assert.equal(routesUseSourceLabels(vs('{sourceLabels: {app: a}}')), true, 'a delegate (no hosts) counts too');
  assert.equal(routesUseSourceLabels(await load('canary.yaml')), true);
});
