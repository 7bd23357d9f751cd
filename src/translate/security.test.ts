import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseText } from '../api/index.ts';
import { buildRegistry, type WorkloadInstance } from '../registry/registry.ts';
import type { ProxyNode } from '../wire/snapshot.ts';
import { translate } from './translate.ts';
import { inboundAuthorization, inboundMtls, peerMtlsDisabled } from './security.ts';

const MESH = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: relaxed, namespace: legacy}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: metrics-port, namespace: legacy}
spec:
  selector: {matchLabels: {app: old}}
  mtls: {mode: DISABLE}
  portLevelMtls: {"9090": {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: [/admin]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec:
  selector: {matchLabels: {app: api}}
  rules: [{from: [{source: {namespaces: [default]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: other, namespace: default}
spec:
  selector: {matchLabels: {app: other}}
---
apiVersion: v1
kind: Service
metadata: {name: old, namespace: legacy}
spec: {selector: {app: old}, ports: [{name: http, port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec: {selector: {app: api}, ports: [{name: http, port: 80}]}
`;

const { resources, diagnostics } = parseText(MESH, 'mesh.yaml');

const node = (app: string, ns: string): ProxyNode => ({
  id: `${ns}/${app}-0`,
  kind: 'sidecar',
  workload: app,
  namespace: ns,
  app,
  version: 'v1',
  serviceAccount: app,
  identity: `spiffe://cluster.local/ns/${ns}/sa/${app}`,
  labels: { app },
});

test('the mesh loads without errors', () => {
  assert.deepEqual(diagnostics.filter((d) => d.severity === 'error'), []);
});

test('PeerAuthentication: mesh STRICT, a namespace PERMISSIVE, a workload DISABLE with a STRICT port', () => {
  assert.deepEqual(inboundMtls(resources, node('api', 'default'), 8080), { mode: 'STRICT', policy: 'istio-system/default' });
  assert.deepEqual(inboundMtls(resources, node('new', 'legacy'), 8080), { mode: 'PERMISSIVE', policy: 'legacy/relaxed' });
  assert.deepEqual(inboundMtls(resources, node('old', 'legacy'), 8080), { mode: 'DISABLE', policy: 'legacy/metrics-port' });
  assert.deepEqual(inboundMtls(resources, node('old', 'legacy'), 9090), { mode: 'STRICT', policy: 'legacy/metrics-port' });
  assert.deepEqual(inboundMtls([], node('api', 'default'), 80), { mode: 'PERMISSIVE' });
});

test('AuthorizationPolicies: mesh-wide ones and those selecting the workload, dry-run marked', () => {
  const names = (app: string, ns: string) => (inboundAuthorization(resources, node(app, ns)).authorization ?? []).map((p) => `${p.namespace}/${p.name}${p.dryRun ? ' (dry run)' : ''}`);
  assert.deepEqual(names('api', 'default'), ['istio-system/deny-admin', 'default/api (dry run)']);
  assert.deepEqual(names('other', 'default'), ['istio-system/deny-admin', 'default/other']);
  assert.deepEqual(names('old', 'legacy'), ['istio-system/deny-admin']);
  assert.deepEqual(inboundAuthorization([], node('api', 'default')), {});
});

test('auto mTLS: endpoints whose workload-wide mode is DISABLE are marked for plaintext', () => {
  const disabled = peerMtlsDisabled(resources);
  assert.equal(disabled('legacy', { app: 'old' }), true);
  assert.equal(disabled('legacy', { app: 'new' }), false);
  assert.equal(disabled('default', { app: 'api' }), false);

  const instances: WorkloadInstance[] = [
    { id: 'legacy/old-0', workload: 'old', namespace: 'legacy', labels: { app: 'old' }, serviceAccount: 'old', inbound: { host: '127.0.0.1', port: 1001 }, ready: true },
    { id: 'default/api-0', workload: 'api', namespace: 'default', labels: { app: 'api' }, serviceAccount: 'api', inbound: { host: '127.0.0.1', port: 1002 }, ready: true },
  ];
  const registry = buildRegistry(resources, instances);
  const snap = translate({ resources, registry, proxy: node('client', 'default'), inbound: { appHost: '127.0.0.1', appPort: 7000 }, version: 1 });
  const endpoint = (host: string) => snap.clusters.find((c) => c.service.host === host)!.endpoints[0]!;
  assert.equal(endpoint('old.legacy.svc.cluster.local').mtls, false);
  assert.equal(endpoint('api.default.svc.cluster.local').mtls, undefined);
  assert.deepEqual(snap.inbound?.mtls, { mode: 'STRICT', policy: 'istio-system/default' });
  assert.deepEqual(snap.inbound?.authorization?.map((p) => p.name), ['deny-admin']);
});
