// The other kinds: Service, Workload, ServiceEntry, WorkloadEntry, Gateway, security policies, and the recognised-only kinds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import type { KubeServiceSpec, ServiceEntrySpec, WorkloadSpec } from './types.ts';
import { NOT_IMPLEMENTED_KINDS } from './implemented.ts';
import { KINDS } from './kinds.ts';
import { errorKeys, errors, load, warnings, yaml } from './testutil.ts';

const doc = (apiVersion: string, kind: string, spec: string, name = 'x') =>
  `apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata:\n  name: ${name}\nspec:\n${spec.split('\n').map((l) => `  ${l}`).join('\n')}\n`;

test('Service: ports and selector, Kubernetes defaults filled in, common fields allowed', () => {
  const result = load(doc('v1', 'Service', yaml`
    type: ClusterIP
    clusterIP: 10.0.0.1
    sessionAffinity: None
    selector: {app: reviews}
    ports:
    - {name: http, port: 9080}
    - {name: grpc, port: 9090, targetPort: grpc-port, protocol: TCP, appProtocol: grpc}
  `, 'reviews'));
  assert.deepEqual(result.diagnostics, []);
  assert.deepEqual((result.resources[0]!.spec as KubeServiceSpec).ports, [
    { name: 'http', port: 9080, protocol: 'TCP', targetPort: 9080 },
    { name: 'grpc', port: 9090, targetPort: 'grpc-port', protocol: 'TCP', appProtocol: 'grpc' },
  ]);
});

test('Service: Kubernetes rules for ports and names', () => {
  const svc = (spec: string, name = 'svc') => errorKeys(load(doc('v1', 'Service', spec, name)));
  assert.deepEqual(svc('ports: [{port: 80}, {port: 81}]'), ['REQUIRED spec.ports[0].name', 'REQUIRED spec.ports[1].name']);
  assert.deepEqual(svc('ports: [{name: a, port: 80}, {name: a, port: 81}]'), ['DUPLICATE spec.ports[1].name']);
  assert.deepEqual(svc('ports: [{port: 70000}]'), ['INVALID_VALUE spec.ports[0].port']);
  assert.deepEqual(svc('ports: [{port: 80, targetPort: "not a name"}]'), ['INVALID_VALUE spec.ports[0].targetPort']);
  assert.deepEqual(svc('ports: [{port: 80, protocol: HTTP}]'), ['INVALID_VALUE spec.ports[0].protocol']);
  assert.deepEqual(svc('ports: [{port: 80}]\nclusterIp: None'), ['UNKNOWN_FIELD spec.clusterIp']);
  assert.deepEqual(svc('ports: [{port: 80}]', '9lives'), ['INVALID_VALUE metadata.name']);
  const external = load(doc('v1', 'Service', 'type: ExternalName\nexternalName: db.example.com'));
  assert.deepEqual(warnings(external).map((d) => `${d.code} ${d.path}`), ['NOT_IMPLEMENTED spec.type', 'NOT_IMPLEMENTED spec.externalName']);
  // Field names are Kubernetes JSON names; snake_case is not accepted outside protobuf kinds.
  assert.deepEqual(svc('ports: [{port: 80, target_port: 8080}]'), ['UNKNOWN_FIELD spec.ports[0].target_port']);
});

test('Workload: defaults (serviceAccount, replicas, cwd relative to the declaring file)', () => {
  const result = load(doc('weft.dev/v1alpha1', 'Workload', yaml`
    labels: {app: sentiment, version: v1}
    command: [python, serve.py]
    cwd: ./app
    env: {MODEL: small}
    port: 8081
  `, 'sentiment-v1'), 'demo/mesh/workloads.yaml');
  assert.deepEqual(result.diagnostics, []);
  const spec = result.resources[0]!.spec as WorkloadSpec;
  assert.deepEqual(spec, {
    labels: { app: 'sentiment', version: 'v1' },
    command: ['python', 'serve.py'],
    cwd: resolve('demo/mesh/app'),
    env: { MODEL: 'small' },
    port: 8081,
    serviceAccount: 'default',
    replicas: 1,
  });
  const noCwd = load(doc('weft.dev/v1alpha1', 'Workload', 'labels: {app: a}\ncommand: [node, a.js]'), '/srv/mesh/a.yaml');
  assert.equal((noCwd.resources[0]!.spec as WorkloadSpec).cwd, dirname('/srv/mesh/a.yaml'));
});

test('Workload: labels and a non-empty command are required; port and replicas are ranged; env values are strings', () => {
  const w = (spec: string) => errorKeys(load(doc('weft.dev/v1alpha1', 'Workload', spec)));
  assert.deepEqual(w('command: [a]'), ['REQUIRED spec.labels']);
  assert.deepEqual(w('labels: {app: a}'), ['REQUIRED spec.command']);
  assert.deepEqual(w('labels: {app: a}\ncommand: []'), ['INVALID_VALUE spec.command']);
  assert.deepEqual(w('labels: {}\ncommand: [a]'), ['INVALID_VALUE spec.labels']);
  assert.deepEqual(w('labels: {app: a}\ncommand: [a]\nport: 0\nreplicas: 0'), ['INVALID_VALUE spec.port', 'INVALID_VALUE spec.replicas']);
  assert.deepEqual(w('labels: {app: a}\ncommand: [a]\nenv: {PORT: 8080}'), ['INVALID_TYPE spec.env.PORT']);
  assert.deepEqual(errorKeys(load('apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: a}\n')), ['REQUIRED spec']);
});

test('ServiceEntry: STATIC and DNS endpoints, ports, and Istio rules', () => {
  const se = (spec: string) => load(doc('networking.istio.io/v1', 'ServiceEntry', spec));
  const ok = se(yaml`
    hosts: [llm.internal]
    ports: [{number: 80, name: http, protocol: HTTP}]
    resolution: STATIC
    endpoints:
    - {address: 10.0.0.1, ports: {http: 8080}, labels: {gpu: a100}, weight: 3}
    - {address: 10.0.0.2, weight: 1}
  `);
  assert.deepEqual(ok.diagnostics, []);
  assert.equal((ok.resources[0]!.spec as ServiceEntrySpec).endpoints![0]!.weight, 3);
  assert.deepEqual(errorKeys(se('hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: STATIC\nendpoints: [{address: a.com}]')), ['INVALID_VALUE spec.endpoints[0].address']);
  assert.deepEqual(errorKeys(se('hosts: [a.com]\nports: [{number: 80, name: http}]\nresolution: STATIC\nendpoints: [{address: 1.1.1.1, ports: {grpc: 9}}]')), ['INVALID_VALUE spec.endpoints[0].ports.grpc']);
  assert.deepEqual(errorKeys(se('hosts: [a.com, b.com]\nports: [{number: 5432, name: pg, protocol: TCP}]\nresolution: DNS')), ['INVALID_VALUE spec.ports[0].protocol']);
  assert.deepEqual(errorKeys(se('hosts: [a.com]\nports: [{number: 80, name: http, protocol: QUIC}]\nresolution: DNS')), ['INVALID_VALUE spec.ports[0].protocol']);
  assert.deepEqual(errorKeys(se('hosts: []')), ['INVALID_VALUE spec.hosts']);
  // Resolution NONE (the default) dials the named host, as DNS does; a wildcard host cannot be dialled.
  assert.deepEqual(warnings(se('hosts: [a.com]\nresolution: NONE')), []);
  assert.deepEqual(warnings(se('hosts: [a.com]')), []);
  assert.deepEqual(warnings(se('hosts: ["*.a.com"]')).map((d) => `${d.code} ${d.path}`), ['NOT_IMPLEMENTED spec.hosts[0]']);
});

test('WorkloadEntry: address or network required, unix sockets without ports', () => {
  const we = (spec: string) => errorKeys(load(doc('networking.istio.io/v1', 'WorkloadEntry', spec)));
  assert.deepEqual(we('address: 10.0.0.9\nports: {http: 8080}\nlabels: {app: a}\nweight: 2'), []);
  assert.deepEqual(we('address: vm1.example.com'), []);
  assert.deepEqual(we('labels: {app: a}'), ['REQUIRED spec.address']);
  assert.deepEqual(we('address: unix:///var/run/a.sock\nports: {http: 1}'), ['CONFLICT spec.ports']);
  assert.deepEqual(we('address: unix://relative.sock'), ['INVALID_VALUE spec.address']);
  assert.deepEqual(we('address: 1.2.3.4\nports: {Bad_Name: 1}'), ['INVALID_VALUE spec.ports.Bad_Name']);
});

test('Gateway: validated as Istio does; HTTP servers are served by the edge, TLS ones warn', () => {
  const gw = (spec: string, name = 'gw') => load(doc('networking.istio.io/v1', 'Gateway', spec, name));
  const ok = gw('selector: {istio: ingressgateway}\nservers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["*"]');
  assert.deepEqual(errorKeys(ok), []);
  assert.deepEqual(warnings(ok), []);
  const tls = gw('selector: {istio: ingressgateway}\nservers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: ["*"]\n  tls: {mode: SIMPLE, credentialName: c}');
  assert.deepEqual(errorKeys(tls), []);
  assert.deepEqual(warnings(tls).map((d) => `${d.code} ${d.path}`), ['NOT_IMPLEMENTED spec.servers[0].port.protocol', 'NOT_IMPLEMENTED spec.servers[0].tls']);
  assert.deepEqual(errorKeys(gw('servers: []')), ['REQUIRED spec.servers']);
  assert.deepEqual(errorKeys(gw('servers:\n- port: {number: 443, name: https, protocol: HTTPS}\n  hosts: [a.example.com]')), ['REQUIRED spec.servers[0].tls']);
  assert.deepEqual(errorKeys(gw('servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: [shortname]')), ['INVALID_VALUE spec.servers[0].hosts[0]']);
  assert.deepEqual(errorKeys(gw('servers:\n- port: {number: 80, name: http, protocol: HTTP}\n  hosts: ["*"]', 'my.gw')), ['INVALID_VALUE metadata.name']);
});

test('PeerAuthentication and AuthorizationPolicy: Istio rules, implemented; CUSTOM refused as not supported', () => {
  const pa = load(doc('security.istio.io/v1', 'PeerAuthentication', 'mtls: {mode: STRICT}'));
  assert.deepEqual(errorKeys(pa), []);
  assert.deepEqual(warnings(pa), []);
  assert.deepEqual(warnings(load(doc('security.istio.io/v1beta1', 'PeerAuthentication', 'selector: {matchLabels: {app: a}}\nportLevelMtls: {"8080": {mode: DISABLE}}'))), []);
  const ap = (spec: string) => load(doc('security.istio.io/v1', 'AuthorizationPolicy', spec));
  assert.deepEqual(warnings(ap('action: ALLOW\nrules: [{}]')), []);
  assert.deepEqual(errorKeys(ap('action: DENY\nrules: [{to: [{operation: {paths: [/admin]}}]}]')), []);
  const custom = ap('action: CUSTOM\nprovider: {name: ext-authz}\nrules: [{to: [{operation: {paths: [/admin]}}]}]');
  assert.deepEqual(errorKeys(custom), ['NOT_SUPPORTED spec.action']);
  assert.match(errors(custom)[0]!.message, /CUSTOM action \(external authorization\) is not supported by Weft/);
  assert.equal(custom.resources.length, 0, 'a CUSTOM policy never reaches a proxy');
  assert.deepEqual(errorKeys(ap('action: DENY')), ['REQUIRED spec.rules']);
  assert.deepEqual(errorKeys(ap('rules:\n- to: [{operation: {ports: ["99999"]}}]')), ['INVALID_VALUE spec.rules[0].to[0].operation.ports[0]']);
  assert.deepEqual(errorKeys(ap('rules:\n- from: [{source: {ipBlocks: ["10.0.0.0/33"]}}]')), ['INVALID_VALUE spec.rules[0].from[0].source.ipBlocks[0]']);
  assert.deepEqual(errorKeys(ap('rules:\n- when: [{key: request.method, values: [GET]}]')), ['INVALID_VALUE spec.rules[0].when[0].key']);
  assert.deepEqual(errorKeys(ap('provider: {name: ext}\naction: ALLOW\nrules: [{}]')), ['CONFLICT spec.provider']);
});

test('recognised-but-not-implemented kinds load, each with exactly one NOT_IMPLEMENTED warning', () => {
  const kinds: Array<[string, string]> = [
    ['networking.istio.io/v1', 'Sidecar'],
    ['networking.istio.io/v1alpha3', 'EnvoyFilter'],
    ['networking.istio.io/v1', 'WorkloadGroup'],
    ['networking.istio.io/v1beta1', 'ProxyConfig'],
    ['extensions.istio.io/v1alpha1', 'WasmPlugin'],
    ['telemetry.istio.io/v1', 'Telemetry'],
    ['security.istio.io/v1', 'RequestAuthentication'],
    ['flagger.app/v1beta1', 'Canary'],
    // FallbackPolicy is validated now (its spec is checked); see fallbackpolicy.test.ts.
  ];
  for (const [apiVersion, kind] of kinds) {
    const result = load(`apiVersion: ${apiVersion}\nkind: ${kind}\nmetadata: {name: a, namespace: n}\nspec: {anything: [1, 2]}\n`);
    assert.deepEqual(errors(result), [], kind);
    assert.equal(result.resources.length, 1, kind);
    assert.deepEqual(warnings(result).map((d) => `${d.code} ${d.line}:${d.col}`), ['NOT_IMPLEMENTED 1:1'], kind);
    assert.match(warnings(result)[0]!.message, new RegExp(`^${kind} n/a is .* not implemented by Weft yet; it will be ignored$`));
  }
  assert.deepEqual(errorKeys(load('apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata: {name: a}\nspec: [1]\n')), ['INVALID_TYPE spec']);
});

test('the NOT_IMPLEMENTED table names only kinds that exist', () => {
  const known = new Set(KINDS.map((k) => `${k.group}/${k.kind}`));
  for (const kind of NOT_IMPLEMENTED_KINDS) assert.ok(known.has(kind), kind);
});
