// Cross-resource analysis: subsets, hosts, duplicate names and rules; host names as Istio resolves them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyze, fqdn, formatDiagnostic, latestDefinitions, loadMesh, parseText } from './index.ts';
import { hostCoveredBy } from './hosts.ts';
import { load, yaml } from './testutil.ts';

const mesh = (text: string) => {
  const loaded = load(text, 'mesh.yaml');
  assert.deepEqual(loaded.diagnostics.filter((d) => d.severity === 'error'), [], 'the documents themselves are valid');
  return analyze(loaded.resources);
};
const keys = (ds: ReturnType<typeof analyze>) => ds.map((d) => `${d.severity} ${d.code} ${d.path}`);

const service = (name: string, ns = 'default') => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: ${ns}}\nspec: {selector: {app: ${name}}, ports: [{name: http, port: 80}]}\n`;
const rule = (name: string, host: string, subsets: string[], ns = 'default') =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  host: ${host}\n  subsets: [${subsets.map((s) => `{name: ${s}, labels: {version: ${s}}}`).join(', ')}]\n`;
const route = (name: string, host: string, dests: string, ns = 'default') =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${name}, namespace: ${ns}}\nspec:\n  hosts: [${host}]\n  http:\n  - route: ${dests}\n`;

test('fqdn: short names are relative to the namespace; dotted names, * and IPs are taken as written', () => {
  assert.equal(fqdn('reviews', 'default'), 'reviews.default.svc.cluster.local');
  assert.equal(fqdn('reviews', 'shop'), 'reviews.shop.svc.cluster.local');
  assert.equal(fqdn('reviews.default.svc.cluster.local', 'shop'), 'reviews.default.svc.cluster.local');
  assert.equal(fqdn('reviews.default', 'shop'), 'reviews.default'); // as Istio: only dot-less names expand
  assert.equal(fqdn('*', 'shop'), '*');
  assert.equal(fqdn('10.0.0.1', 'shop'), '10.0.0.1');
  assert.equal(fqdn('::1', 'shop'), '::1');
  assert.ok(hostCoveredBy('a.example.com', '*.example.com'));
  assert.ok(hostCoveredBy('*.a.example.com', '*.example.com'));
  assert.ok(!hostCoveredBy('example.com', '*.example.com'));
});

test('a subset no DestinationRule defines is an error at the destination subset', () => {
  const text = service('reviews') + '---\n' + rule('reviews', 'reviews', ['v1', 'v2']) + '---\n' +
    route('reviews', 'reviews', '[{destination: {host: reviews, subset: v1}, weight: 50}, {destination: {host: reviews, subset: v3}, weight: 50}]');
  const found = mesh(text);
  assert.deepEqual(keys(found), ['error UNKNOWN_SUBSET spec.http[0].route[1].destination.subset']);
  assert.match(found[0]!.message, /subset "v3" is not defined by any DestinationRule for reviews\.default\.svc\.cluster\.local \(DestinationRule default\/reviews defines v1, v2\)/);
  assert.equal(found[0]!.line, 19);
});

test('subsets resolve across spellings of the host and namespaces, and through wildcard rules', () => {
  const text = service('reviews', 'shop') + '---\n' +
    rule('reviews', 'reviews.shop.svc.cluster.local', ['v1'], 'istio-system') + '---\n' +
    route('a', 'reviews', '[{destination: {host: reviews, subset: v1}}]', 'shop') + '---\n' +
    rule('wild', '"*.example.com"', ['blue']) + '---\n' +
    route('b', 'api.example.com', '[{destination: {host: api.example.com, subset: blue}}]');
  assert.deepEqual(keys(mesh(text)), []);
});

test('no DestinationRule at all: the message says so', () => {
  const found = mesh(service('ratings') + '---\n' + route('r', 'ratings', '[{destination: {host: ratings, subset: v1}}]'));
  assert.match(found[0]!.message, /there is no DestinationRule for this host/);
});

test('an unknown destination host is a warning; Services, ServiceEntries and VirtualService hosts define hosts', () => {
  const entry = 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ext}\nspec:\n  hosts: ["*.googleapis.com"]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n';
  const text = service('reviews') + '---\n' + entry + '---\n' +
    route('r', 'front', '[{destination: {host: reviews}, weight: 1}, {destination: {host: www.googleapis.com}}, {destination: {host: front}}, {destination: {host: ghost}}, {destination: {host: reviews.default}}]');
  const found = mesh(text);
  assert.deepEqual(keys(found), [
    'warning UNKNOWN_HOST spec.http[0].route[3].destination.host',
    'warning UNKNOWN_HOST spec.http[0].route[4].destination.host',
  ]);
  assert.match(found[0]!.message, /host "ghost" \(ghost\.default\.svc\.cluster\.local\) is not defined by any Service, ServiceEntry or VirtualService$/);
  assert.match(found[1]!.message, /did you mean reviews\.default\.svc\.cluster\.local\?/);
});

test('mirrors and tcp/tls destinations are checked too', () => {
  const text = rule('r', 'r', ['v1']) + '---\n' + yaml`
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: m}
    spec:
      hosts: [r]
      http:
      - route: [{destination: {host: r, subset: v1}}]
        mirror: {host: r, subset: shadow}
      tcp:
      - route: [{destination: {host: r, subset: v9}}]
  `;
  const found = keys(mesh(text)).filter((k) => k.includes('UNKNOWN_SUBSET'));
  assert.deepEqual(found, ['error UNKNOWN_SUBSET spec.http[0].mirror.subset', 'error UNKNOWN_SUBSET spec.tcp[0].route[0].destination.subset']);
});

test('a later definition of the same kind/namespace/name replaces the earlier one, with a warning', () => {
  const text = service('a') + '---\n' + service('a') + '---\n' + service('a', 'other') + '---\n' + rule('a', 'a', []);
  const { resources } = parseText(text, 'mesh.yaml');
  const latest = latestDefinitions(resources);
  assert.deepEqual(latest.diagnostics.map((d) => `${d.severity} ${d.code} ${d.path}`), ['warning DUPLICATE_NAME metadata.name']);
  assert.match(latest.diagnostics[0]!.message, /Service default\/a replaces the one defined at mesh\.yaml:1:1/);
  assert.equal(latest.resources.length, 3);
  assert.equal(latest.resources.filter((r) => r.kind === 'Service' && r.metadata.namespace === 'default')[0]!.source.line, resources[1]!.source.line);
  // The same object in two API versions is still the same object.
  const versions = route('x', 'x', '[{destination: {host: x}}]') + '---\n' + route('x', 'x', '[{destination: {host: x}}]').replace('networking.istio.io/v1', 'networking.istio.io/v1beta1');
  const v = latestDefinitions(parseText(versions, 'mesh.yaml').resources);
  assert.equal(v.resources.length, 1);
  assert.equal(v.resources[0]!.apiVersion, 'networking.istio.io/v1beta1');
});

test('two DestinationRules for the same host are a warning', () => {
  const found = mesh(rule('one', 'reviews', ['v1']) + '---\n' + rule('two', 'reviews.default.svc.cluster.local', ['v2']));
  assert.deepEqual(keys(found), ['warning DUPLICATE_DESTINATION_RULE spec.host']);
});

test('loadMesh: load + analyze, diagnostics sorted by file and line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-mesh-'));
  try {
    await writeFile(join(dir, 'a.yaml'), route('r', 'reviews', '[{destination: {host: reviews, subset: v9}}]'));
    await writeFile(join(dir, 'b.yaml'), service('reviews') + '---\n' + rule('reviews', 'reviews', ['v1']) + '---\napiVersion: v1\nkind: Service\nmetadata: {name: Bad}\n');
    const result = await loadMesh([dir]);
    assert.deepEqual(result.diagnostics.map((d) => `${d.file.slice(dir.length + 1)}:${d.line} ${d.code}`), ['a.yaml:7 UNKNOWN_SUBSET', 'b.yaml:15 INVALID_VALUE']);
    assert.deepEqual(result.resources.map((r) => r.kind), ['VirtualService', 'Service', 'DestinationRule']);
    assert.ok(result.diagnostics.every((d) => formatDiagnostic(d).startsWith(d.file)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('gateways a VirtualService binds to must exist and be served by the edge', () => {
  const gw = (name: string, selector: string) =>
    `apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: ${name}}\nspec:\n  selector: ${selector}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: ["*"]\n`;
  const bound = (gateways: string) =>
    `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: ["*"]\n  gateways: ${gateways}\n  http:\n  - directResponse: {status: 200}\n`;
  const found = (text: string) => analyze(parseText(text, 'mesh.yaml').resources).map((d) => `${d.severity} ${d.code} ${d.path}`);
  assert.deepEqual(found(gw('ingress', '{istio: ingressgateway}') + '---\n' + bound('[ingress, mesh]')), []);
  assert.deepEqual(found(bound('[missing]')), ['warning UNKNOWN_GATEWAY spec.gateways[0]']);
  assert.deepEqual(found(gw('egress', '{istio: egressgateway}') + '---\n' + bound('[default/egress]')), ['warning GATEWAY_NOT_SERVED spec.gateways[0]']);
});

test('a FallbackPolicy’s host and route are checked as destinations are; two for one target warn', () => {
  const fp = (name: string, spec: string) => `apiVersion: weft.dev/v1alpha1\nkind: FallbackPolicy\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
  const base = service('reviews') + '---\n' + rule('reviews', 'reviews', ['v1', 'v2']) + '---\n';
  assert.deepEqual(keys(mesh(base + fp('ok', '{host: reviews, subset: v2, route: {host: reviews, subset: v1}}'))), []);
  assert.deepEqual(keys(mesh(base + fp('bad', '{host: reviews, subset: v3, route: {host: ratings, subset: v1}}'))), [
    'error UNKNOWN_SUBSET spec.subset',
    'error UNKNOWN_SUBSET spec.route.subset',
    'warning UNKNOWN_HOST spec.route.host',
  ]);
  assert.deepEqual(keys(mesh(base + fp('one', '{host: reviews, response: {}}') + '---\n' + fp('two', '{host: reviews.default.svc.cluster.local, response: {}}'))), [
    'warning DUPLICATE_FALLBACK_POLICY spec.host',
  ]);
});
