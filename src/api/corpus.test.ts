// Real Istio and Flagger configuration from the shared corpus: valid files load cleanly, invalid ones fail where Istio says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, parseAllDocuments } from 'yaml';
import { formatDiagnostic, loadMesh, loadPaths, parseText } from './index.ts';
import { isUnder } from './paths.ts';
import { CORPUS, errors } from './testutil.ts';

const dir = (sub: string) => fileURLToPath(new URL(sub, CORPUS));
const filesIn = (sub: string) =>
  readdirSync(dir(sub))
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => `${dir(sub)}${f}`);

function assertNoErrors(file: string, diagnostics: ReturnType<typeof errors>): void {
  const found = errors(diagnostics);
  assert.deepEqual(found.map(formatDiagnostic), [], `${file} should load without errors`);
}

// Istio's own test configuration. rule-websocket-route.yaml is the one exception: it uses
// `websocketUpgrade`, a field removed from Istio's API long ago. The current CRD schema does not
// have it, so `kubectl apply` (strict field validation) rejects the file, and so does Weft.
const REMOVED_FIELD_FILES: Record<string, string[]> = {
  'rule-websocket-route.yaml': ['UNKNOWN_FIELD spec.http[0].websocketUpgrade', 'UNKNOWN_FIELD spec.http[0].websocketUpgrade'],
};

for (const sub of ['istio/bookinfo/', 'istio/dataset/', 'istio/testdata-config/', 'flagger/', 'seed/']) {
  for (const file of filesIn(sub)) {
    const name = file.slice(file.lastIndexOf('/') + 1);
    test(`corpus ${sub}${name} loads without errors`, async () => {
      const result = await loadPaths([file]);
      const expected = sub === 'istio/testdata-config/' ? REMOVED_FIELD_FILES[name] : undefined;
      if (expected) {
        assert.deepEqual(errors(result).map((d) => `${d.code} ${d.path}`), expected);
        assert.match(errors(result)[0]!.message, /unknown field "websocketUpgrade"/);
      } else {
        assertNoErrors(file, result.diagnostics);
        assert.ok(result.resources.length > 0, 'some resources load');
      }
    });
  }
}

test('corpus *-valid.yaml: every document is accepted', () => {
  const files = filesIn('istio/validation/').filter((f) => f.endsWith('-valid.yaml'));
  assert.ok(files.length >= 4);
  for (const file of files) {
    const result = parseText(readFileSync(file, 'utf8'), file);
    assertNoErrors(file, result.diagnostics);
    const docs = parseAllDocuments(readFileSync(file, 'utf8')).filter((d) => d.contents !== null && isMap(d.contents));
    assert.equal(result.resources.length, docs.length, `${file}: one resource per document`);
  }
});

/**
 * Where Istio's `_err` names no field, the field Weft must blame (by file and metadata.name), plus
 * a word the message must contain so the error is the same one, not a coincidence.
 */
const EXPECTED_PATHS: Record<string, Record<string, [path: string, word: RegExp]>> = {
  'authz-invalid.yaml': {
    'service-account-and-namespace': ['spec.rules[0].from[0].source', /serviceAccounts with namespaces or principals/],
    'service-account-and-namespace-principal': ['spec.rules[0].from[0].source', /serviceAccounts with namespaces or principals/],
  },
  'peerauth-invalid.yaml': {
    'bad-mode': ['spec.mtls.mode', /BLAH/],
    'bad-port': ['spec.portLevelMtls.acd', /not a number/],
    'port-level-global': ['spec.portLevelMtls', /requires a selector/],
    'zero-port': ['spec.portLevelMtls["0"]', /1-65535/],
    'high-port': ['spec.portLevelMtls["42949672"]', /1-65535/],
  },
  'serviceentry-invalid.yaml': {
    'bad-selector-value': ['spec.workloadSelector.labels.val', /wildcard is not supported in selector/],
    'selector-and-endpoints': ['spec.endpoints', /only one of workloadSelector or endpoints/],
    'bad-host-wildcard': ['spec.hosts[0]', /cannot be wildcard/],
    'bad-cidr-resolution': ['spec.addresses[0]', /CIDR addresses are allowed only for NONE\/STATIC/],
    'duplicate-ports-name': ['spec.ports[1].name', /duplicate/],
    'duplicate-ports-number': ['spec.ports[1].number', /cannot be duplicated/],
    'bad-port': ['spec.ports[0].number', /between 1 and 65535/],
    'bad-port-target': ['spec.ports[0].targetPort', /between 1 and 65535/],
    'none-with-endpoints': ['spec.endpoints', /NONE mode cannot set endpoints/],
    'dns-rr-with-multiple-endpoints': ['spec.endpoints', /DNS_ROUND_ROBIN mode cannot have multiple endpoints/],
  },
};

/** The document's text with the `_err` entry blanked out, every other character where it was. */
function withoutErr(text: string): Array<{ expected: string; name: string; text: string }> {
  const out: Array<{ expected: string; name: string; text: string }> = [];
  for (const doc of parseAllDocuments(text)) {
    if (!isMap(doc.contents)) continue;
    const err = doc.contents.items.find((p) => isScalar(p.key) && p.key.value === '_err');
    if (!err || !isScalar(err.key) || !isScalar(err.value)) continue;
    const meta = doc.contents.get('metadata');
    const name = isMap(meta) ? String(meta.get('name')) : '';
    const blank = (s: string) => s.replace(/[^\n]/g, ' ');
    const [start, end] = doc.range;
    const [k0, v1] = [err.key.range![0], err.value.range![1]];
    out.push({
      expected: String(err.value.value),
      name,
      text: blank(text.slice(0, start)) + text.slice(start, k0) + blank(text.slice(k0, v1)) + text.slice(v1, end),
    });
  }
  return out;
}

test('corpus *-invalid.yaml: each document fails on the field Istio names', () => {
  const files = filesIn('istio/validation/').filter((f) => f.endsWith('-invalid.yaml'));
  assert.ok(files.length >= 4);
  let checked = 0;
  for (const file of files) {
    const base = file.slice(file.lastIndexOf('/') + 1);
    for (const { expected, name, text } of withoutErr(readFileSync(file, 'utf8'))) {
      const found = errors(parseText(text, file));
      const label = `${base} ${name} (Istio: ${expected})`;
      assert.ok(found.length > 0, `${label}: expected an error`);
      // Istio's message starts with the field path when it has one: `spec.hosts: Required value`.
      const istioPath = /^(spec(?:[.[][^:\s]*)?)(?::|\s)/.exec(expected)?.[1];
      const [path, word] = istioPath ? [istioPath, /./] : (EXPECTED_PATHS[base]?.[name] ?? assert.fail(`${label}: no expectation`));
      assert.ok(
        found.some((d) => isUnder(d.path, path) && word.test(d.message)),
        `${label}: no error at ${path}; got ${found.map(formatDiagnostic).join(' | ')}`,
      );
      checked++;
    }
  }
  assert.ok(checked >= 20, `checked ${checked} invalid documents`);
});

test('corpus: bookinfo rules and subsets analyze cleanly together', async () => {
  // The VirtualServices name subsets that destination-rule-all.yaml defines: no UNKNOWN_SUBSET.
  const result = await loadMesh([`${dir('istio/bookinfo/')}destination-rule-all.yaml`, `${dir('istio/bookinfo/')}virtual-service-all-v1.yaml`]);
  assert.deepEqual(errors(result), []);
  // Each destination host is also a VirtualService host, which counts as defining it.
  assert.deepEqual(result.diagnostics.filter((d) => d.code === 'UNKNOWN_HOST'), []);
});

test('corpus: seed canary and circuit breaker analyze cleanly', async () => {
  const result = await loadMesh([dir('seed/')]);
  assert.deepEqual(errors(result).map(formatDiagnostic), []);
  assert.deepEqual(
    result.resources.map((r) => `${r.kind} ${r.metadata.namespace}/${r.metadata.name}`),
    ['DestinationRule default/llm-service', 'VirtualService default/sentiment-model', 'DestinationRule default/sentiment-model'],
  );
});
