// Loading YAML text, files and folders: documents, positions, syntax errors, kinds and metadata.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatDiagnostic, loadPaths, parseText } from './index.ts';
import { errorKeys, errors, load, warnings, yaml } from './testutil.ts';

const canary = yaml`
  apiVersion: networking.istio.io/v1
  kind: VirtualService
  metadata:
    name: sentiment
  spec:
    hosts:
    - sentiment
    http:
    - route:
      - destination:
          host: sentiment
          subset: v1
        weight: 90
      - destination:
          host: sentiment
          subset: v2
        weight: -10
`;

test('an out-of-range weight is reported at its line:col with the field path', () => {
  const result = load(canary, 'src/x.yaml');
  assert.equal(result.resources.length, 0, 'a resource with errors is not loaded');
  assert.deepEqual(result.diagnostics.map(formatDiagnostic), [
    'src/x.yaml:17:15: error INVALID_VALUE: spec.http[0].route[1].weight: must be between 0 and 2147483647',
  ]);
});

test('formatDiagnostic: file:line:col: severity CODE: message', () => {
  assert.equal(
    formatDiagnostic({ file: 'a.yaml', line: 3, col: 7, severity: 'warning', code: 'X', message: 'spec.a: b', path: 'spec.a' }),
    'a.yaml:3:7: warning X: spec.a: b',
  );
});

test('posOf finds nested fields, list items, and falls back to the nearest parent', () => {
  const r = load(canary.replace('weight: -10', 'weight: 10')).resources[0]!;
  assert.deepEqual(r.source, { file: 'test.yaml', line: 1, col: 1 });
  assert.deepEqual(r.posOf('spec.http[0].route[1].weight'), { file: 'test.yaml', line: 17, col: 15 });
  assert.deepEqual(r.posOf('spec.http[0].route[1].destination.subset'), { file: 'test.yaml', line: 16, col: 17 });
  // A list item points at the item, a nested map at its key.
  assert.deepEqual(r.posOf('spec.http[0].route[1]'), { file: 'test.yaml', line: 14, col: 7 });
  assert.deepEqual(r.posOf('spec.http'), { file: 'test.yaml', line: 8, col: 3 });
  // Missing fields and indexes fall back to what exists.
  assert.deepEqual(r.posOf('spec.http[0].route[1].headers.request'), r.posOf('spec.http[0].route[1]'));
  assert.deepEqual(r.posOf('spec.http[7].route'), r.posOf('spec.http'));
  assert.deepEqual(r.posOf('nonsense'), r.source);
});

test('posOf resolves camelCase paths against snake_case keys', () => {
  const r = load(yaml`
    apiVersion: networking.istio.io/v1
    kind: VirtualService
    metadata: {name: r}
    spec:
      hosts: [r]
      http:
      - route:
        - destination: {host: r}
        retries:
          attempts: 2
          retry_on: 5xx
  `).resources[0]!;
  assert.deepEqual(r.posOf('spec.http[0].retries.retryOn'), { file: 'test.yaml', line: 11, col: 17 });
});

test('malformed YAML is a YAML_SYNTAX error with line:col, and the other documents still load', () => {
  const text = yaml`
    apiVersion: v1
    kind: Service
    metadata: {name: first}
    spec: {ports: [{port: 80}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: broken
    spec: {}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: third}
  `;
  const result = load(text);
  assert.deepEqual(result.resources.map((r) => r.metadata.name), ['first', 'third']);
  const syntax = errors(result);
  assert.ok(syntax.length >= 1);
  assert.ok(syntax.every((d) => d.code === 'YAML_SYNTAX'));
  assert.ok(syntax.every((d) => d.line >= 8 && d.line <= 10), syntax.map(formatDiagnostic).join('\n'));
});

test('duplicate keys are a YAML error', () => {
  const result = load('apiVersion: v1\nkind: Service\nkind: Service\nmetadata: {name: a}\n');
  assert.deepEqual(errorKeys(result), ['YAML_SYNTAX ']);
  assert.equal(result.diagnostics[0]!.line, 3);
});

test('empty documents and comment-only documents are skipped', () => {
  const result = load('---\n# nothing here\n---\n\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n');
  assert.deepEqual(result.diagnostics, []);
  assert.equal(result.resources.length, 1);
});

test('metadata.namespace defaults to "default"; labels and annotations default to {}', () => {
  const result = load('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: b, namespace: shop, labels: {app: b}}\n');
  assert.deepEqual(
    result.resources.map((r) => r.metadata),
    [
      { name: 'a', namespace: 'default', labels: {}, annotations: {} },
      { name: 'b', namespace: 'shop', labels: { app: 'b' }, annotations: {} },
    ],
  );
});

test('missing metadata.name, apiVersion or kind are errors', () => {
  assert.deepEqual(errorKeys(load('apiVersion: v1\nkind: Service\nmetadata: {namespace: x}\n')), ['REQUIRED metadata.name']);
  assert.deepEqual(errorKeys(load('apiVersion: v1\nkind: Service\n')), ['REQUIRED metadata']);
  assert.deepEqual(errorKeys(load('kind: Service\nmetadata: {name: a}\n')), ['REQUIRED apiVersion']);
  assert.deepEqual(errorKeys(load('apiVersion: v1\nmetadata: {name: a}\n')), ['REQUIRED kind']);
  assert.deepEqual(errorKeys(load('- a\n- b\n')), ['INVALID_TYPE ']);
});

test('invalid names and namespaces are errors', () => {
  assert.deepEqual(errorKeys(load('apiVersion: v1\nkind: Service\nmetadata: {name: Bad_Name}\n')), ['INVALID_VALUE metadata.name']);
  assert.deepEqual(errorKeys(load('apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: "x.y"}\n')), ['INVALID_VALUE metadata.namespace']);
});

test('unknown kinds are errors that list the accepted kinds; a wrong version names the right ones', () => {
  const unknown = errors(load('apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n'));
  assert.deepEqual(unknown.map((d) => `${d.code} ${d.path} ${d.line}:${d.col}`), ['UNKNOWN_KIND kind 2:7']);
  assert.match(unknown[0]!.message, /Weft accepts .*VirtualService \(networking\.istio\.io\/v1, networking\.istio\.io\/v1beta1, networking\.istio\.io\/v1alpha3\)/);
  const version = errors(load('apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: a}\n'));
  assert.match(version[0]!.message, /use networking\.istio\.io\/v1, networking\.istio\.io\/v1beta1, networking\.istio\.io\/v1alpha3/);
  const group = errors(load('apiVersion: v1\nkind: VirtualService\nmetadata: {name: a}\n'));
  assert.match(group[0]!.message, /did you mean apiVersion networking\.istio\.io\/v1\?/);
});

test('Kubernetes kinds Weft has no use for are skipped with a warning, not an error', () => {
  const result = load('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec: {replicas: 1}\n');
  assert.deepEqual(errors(result), []);
  assert.deepEqual(warnings(result).map((d) => d.code), ['IGNORED_KIND']);
  assert.equal(result.resources.length, 0);
});

test('top-level unknown fields are errors; `status` is accepted and ignored', () => {
  const result = load('apiVersion: v1\nkind: Service\nmetadata: {name: a}\n_err: oops\nstatus: {loadBalancer: {}}\n');
  assert.deepEqual(errorKeys(result), ['UNKNOWN_FIELD _err']);
});

test('YAML anchors and aliases are followed', () => {
  const result = load(yaml`
    apiVersion: networking.istio.io/v1
    kind: DestinationRule
    metadata: {name: r}
    spec:
      host: r
      subsets:
      - name: v1
        labels: &v1 {version: v1}
      - name: v1-copy
        labels: *v1
  `);
  assert.deepEqual(errors(result), []);
  assert.deepEqual((result.resources[0]!.spec as { subsets: unknown[] }).subsets, [
    { name: 'v1', labels: { version: 'v1' } },
    { name: 'v1-copy', labels: { version: 'v1' } },
  ]);
});

test('go-yaml compatibility: `[1.2.3.4, 2001:db8::]` reads as two strings', () => {
  const result = load(yaml`
    apiVersion: networking.istio.io/v1
    kind: ServiceEntry
    metadata: {name: e}
    spec:
      hosts: [example.com]
      addresses: [1.2.3.4, 2001:db8::]
      resolution: STATIC
  `);
  assert.deepEqual(errors(result), []);
  assert.deepEqual((result.resources[0]!.spec as { addresses: string[] }).addresses, ['1.2.3.4', '2001:db8::']);
});

test('loadPaths: folders recursively (yaml/yml only, sorted, hidden folders skipped), files as given, missing paths', async () => {
  const root = await mkdtemp(join(tmpdir(), 'weft-api-'));
  try {
    const svc = (name: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\n`;
    await mkdir(join(root, 'mesh', 'b'), { recursive: true });
    await mkdir(join(root, 'mesh', '.git'), { recursive: true });
    await writeFile(join(root, 'mesh', 'z.yaml'), svc('z'));
    await writeFile(join(root, 'mesh', 'a.yml'), svc('a'));
    await writeFile(join(root, 'mesh', 'b', 'c.yaml'), svc('c'));
    await writeFile(join(root, 'mesh', 'notes.txt'), 'not yaml');
    await writeFile(join(root, 'mesh', '.git', 'x.yaml'), svc('hidden'));
    await writeFile(join(root, 'extra.conf'), svc('extra'));
    const missing = join(root, 'nope.yaml');
    const result = await loadPaths([join(root, 'extra.conf'), join(root, 'mesh'), missing, join(root, 'mesh', 'a.yml')]);
    // The explicitly named file first, then the folder in sorted order; a.yml is not loaded twice.
    assert.deepEqual(result.resources.map((r) => r.metadata.name), ['extra', 'a', 'c', 'z']);
    assert.deepEqual(result.diagnostics.map((d) => `${d.code} ${d.file} ${d.line}:${d.col}`), [`FILE_NOT_FOUND ${missing} 1:1`]);
    assert.equal(result.resources[2]!.source.file, join(root, 'mesh', 'b', 'c.yaml'));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('parseText sorts diagnostics by position', () => {
  const result = parseText(
    'apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  zzz: 1\n  ports: [{port: 0}]\n',
    'f.yaml',
  );
  assert.deepEqual(result.diagnostics.map((d) => `${d.line} ${d.code}`), ['5 UNKNOWN_FIELD', '6 INVALID_VALUE']);
});
