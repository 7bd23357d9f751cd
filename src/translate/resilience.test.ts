// Resilience in translation: connectionPool, outlierDetection and retryBudget on each cluster as
// the merged policy says; FallbackPolicies by host and subset; the streaming timeout annotations.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseText } from '../api/index.ts';
import { buildRegistry, type WorkloadInstance } from '../registry/registry.ts';
import type { ProxyNode, ProxySnapshot } from '../wire/snapshot.ts';
import { translate } from './translate.ts';
import { clusterResilience } from './resilience.ts';

const client: ProxyNode = { id: 'default/client-0', kind: 'sidecar', workload: 'client', namespace: 'default', app: 'client', version: 'v1', serviceAccount: 'default', identity: 'spiffe://cluster.local/ns/default/sa/default', labels: { app: 'client' } };

const instances: WorkloadInstance[] = [
  { id: 'default/m-v1-0', workload: 'm-v1', namespace: 'default', labels: { app: 'model', version: 'v1' }, serviceAccount: 'model', inbound: { host: '127.0.0.1', port: 7001 }, ready: true },
  { id: 'default/m-v2-0', workload: 'm-v2', namespace: 'default', labels: { app: 'model', version: 'v2' }, serviceAccount: 'model', inbound: { host: '127.0.0.1', port: 7002 }, ready: true },
  { id: 'default/small-0', workload: 'small', namespace: 'default', labels: { app: 'small', version: 'v1' }, serviceAccount: 'small', inbound: { host: '127.0.0.1', port: 7003 }, ready: true },
];

const services = `
apiVersion: v1
kind: Service
metadata: {name: model}
spec: {selector: {app: model}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: small}
spec: {selector: {app: small}, ports: [{name: http, port: 80}]}
`;

function snapshot(yaml: string): ProxySnapshot {
  const { resources, diagnostics } = parseText(services + '---\n' + yaml, 'mesh.yaml');
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
  return translate({ resources, registry: buildRegistry(resources, instances), proxy: client, version: 1 });
}
const clusterOf = (s: ProxySnapshot, name: string) => s.clusters.find((c) => c.name === name)!;
const M = 'model.default.svc.cluster.local';

test('the seed circuit breaker: connectionPool and outlierDetection on the cluster, defaults written out', () => {
  const s = snapshot(`
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: model}
spec:
  host: model
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 100}
      http: {h2UpgradePolicy: UPGRADE, maxRequestsPerConnection: 10}
    outlierDetection: {consecutive5xxErrors: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
`);
  const c = clusterOf(s, `outbound|80||${M}`);
  assert.equal(c.protocol, 'h2');
  assert.equal(c.limits?.maxConnections, 100);
  assert.equal(c.limits?.maxRequestsPerConnection, 10);
  assert.equal(c.limits?.maxPendingRequests, 4294967295);
  assert.equal(c.limits?.connectTimeoutMs, 10_000);
  assert.deepEqual(c.outlierDetection, {
    consecutive5xx: 3,
    consecutiveGatewayErrors: 0,
    splitExternalLocalOriginErrors: false,
    consecutiveLocalOriginFailures: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionTimeMs: 300_000,
    maxEjectionPercent: 50,
    alwaysEjectOneHost: true,
    minHealthPercent: 0,
  });
});

test('no policy, or a connectionPool that only picks the protocol: no limits on the wire (Istio’s defaults)', () => {
  const plain = snapshot('apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: model}\nspec: {host: model}\n');
  assert.equal(clusterOf(plain, `outbound|80||${M}`).limits, undefined);
  assert.equal(clusterOf(plain, `outbound|80||${M}`).outlierDetection, undefined);
  assert.deepEqual(clusterResilience({ connectionPool: { http: { h2UpgradePolicy: 'UPGRADE' } } }, 'h2'), {});
  assert.equal(clusterResilience({ retryBudget: { percent: 10 } }, 'http1').limits?.retryBudget?.percent, 10);
});

test('a subset’s policy replaces the rule’s field by field, as for load balancing', () => {
  const s = snapshot(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model}
spec:
  host: model
  trafficPolicy:
    connectionPool: {tcp: {maxConnections: 10}}
    outlierDetection: {consecutive5xxErrors: 7}
  subsets:
  - name: v1
    labels: {version: v1}
  - name: v2
    labels: {version: v2}
    trafficPolicy:
      connectionPool: {http: {http1MaxPendingRequests: 1}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model}
spec:
  hosts: [model]
  http: [{route: [{destination: {host: model, subset: v1}, weight: 50}, {destination: {host: model, subset: v2}, weight: 50}]}]
`);
  const v1 = clusterOf(s, `outbound|80|v1|${M}`);
  const v2 = clusterOf(s, `outbound|80|v2|${M}`);
  assert.equal(v1.limits?.maxConnections, 10);
  assert.equal(v2.limits?.maxConnections, 4294967295, 'the subset’s connectionPool replaces the rule’s as a whole');
  assert.equal(v2.limits?.maxPendingRequests, 1);
  assert.equal(v2.outlierDetection?.consecutive5xx, 7, 'outlierDetection is inherited');
});

test('FallbackPolicy: one for the subset wins over one for the host; its route becomes a cluster', () => {
  const s = snapshot(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model}
spec:
  host: model
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model}
spec:
  hosts: [model]
  http:
  - route:
    - {destination: {host: model, subset: v1}, weight: 50}
    - {destination: {host: model, subset: v2}, weight: 50}
---
apiVersion: weft.dev/v1alpha1
kind: FallbackPolicy
metadata: {name: model}
spec:
  host: model
  cache: {ttl: 1m, key: {headers: [X-User]}}
  response: {body: neutral}
---
apiVersion: weft.dev/v1alpha1
kind: FallbackPolicy
metadata: {name: model-v2}
spec:
  host: model
  subset: v2
  on: [5xx]
  route: {host: small}
`);
  assert.deepEqual(clusterOf(s, `outbound|80|v1|${M}`).fallback, {
    policy: 'default/model',
    on: ['unavailable', 'overflow', 'timeout'],
    cache: { ttlMs: 60_000, maxEntries: 1000, maxBytes: 16 * 1024 * 1024, keyHeaders: ['x-user'], keyBody: true },
    response: { status: 200, headers: {}, body: 'neutral' },
  });
  assert.deepEqual(clusterOf(s, `outbound|80|v2|${M}`).fallback, { policy: 'default/model-v2', on: ['5xx'], route: { cluster: 'outbound|80||small.default.svc.cluster.local' } });
  assert.ok(clusterOf(s, 'outbound|80||small.default.svc.cluster.local').endpoints.length === 1);
});

test('a fallback route back to the service it protects does not loop', () => {
  const s = snapshot(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: model}
spec:
  host: model
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
---
apiVersion: weft.dev/v1alpha1
kind: FallbackPolicy
metadata: {name: a}
spec: {host: model, subset: v2, route: {host: model, subset: v1}}
---
apiVersion: weft.dev/v1alpha1
kind: FallbackPolicy
metadata: {name: b}
spec: {host: model, subset: v1, route: {host: model, subset: v2}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: model}
spec:
  hosts: [model]
  http: [{route: [{destination: {host: model, subset: v2}}]}]
`);
  assert.equal(clusterOf(s, `outbound|80|v2|${M}`).fallback?.route?.cluster, `outbound|80|v1|${M}`);
  assert.equal(clusterOf(s, `outbound|80|v1|${M}`).fallback?.route?.cluster, `outbound|80|v2|${M}`);
});

test('streaming timeouts: VirtualService annotations, a route-named one winning for its route', () => {
  const s = snapshot(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: model
  annotations:
    weft.dev/first-byte-timeout: 5s
    weft.dev/idle-timeout: 2s
    weft.dev/idle-timeout.chat: 10s
spec:
  hosts: [model]
  http:
  - name: chat
    match: [{uri: {prefix: /chat}}]
    route: [{destination: {host: model}}]
  - route: [{destination: {host: model}}]
`);
  const routes = s.outbound.virtualHosts.find((v) => v.name === `${M}:80`)!.routes;
  const [chat, rest] = routes.map((r) => r.action);
  assert.ok(chat.kind === 'route' && rest.kind === 'route');
  assert.deepEqual([chat.firstByteTimeoutMs, chat.idleTimeoutMs, chat.timeoutMs], [5000, 10_000, undefined]);
  assert.deepEqual([rest.firstByteTimeoutMs, rest.idleTimeoutMs], [5000, 2000]);
});
