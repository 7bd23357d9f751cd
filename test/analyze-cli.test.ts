// `weft analyze` as users run it: on Istio's own samples and on invalid documents.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtemp, writeFile, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WEFT } from './helpers/mesh.ts';

const CORPUS = fileURLToPath(new URL('../../shared/corpus/', import.meta.url));
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [WEFT, 'analyze', ...args]).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

test('the Bookinfo rules analyze clean, each applied over destination-rule-all.yaml as its docs do', async () => {
  // Bookinfo's files are alternatives (several redefine reviews or details), so the folder as a
  // whole is not one mesh: its docs apply the subsets first, then one routing file at a time.
  const dir = join(CORPUS, 'istio/bookinfo');
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml'));
  assert.ok(files.length >= 20);
  const results = await Promise.all(files.map((f) => run(['-f', join(dir, 'destination-rule-all.yaml'), '-f', join(dir, f)])));
  results.forEach((r, i) => {
    assert.equal(r.code, 0, `${files[i]}: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /: error /);
  });
});

test('the seed examples and Flagger canaries analyze clean', async () => {
  for (const dir of ['seed', 'flagger']) {
    const r = await run(['-f', join(CORPUS, dir)]);
    assert.equal(r.code, 0, `${dir}: ${r.stdout}`);
  }
});

test('an invalid document: exit 1, file:line:col: error CODE: message naming the field path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-analyze-'));
  const file = join(dir, 'vs.yaml');
  await writeFile(
    file,
    [
      'apiVersion: networking.istio.io/v1',
      'kind: VirtualService',
      'metadata: {name: reviews}',
      'spec:',
      '  hosts: [reviews]',
      '  http:',
      '  - route:',
      '    - destination: {host: reviews}',
      '      weight: 0',
      '    - destination: {host: reviews}',
      '      weight: 0',
      '      wieght: 5',
      '',
    ].join('\n'),
  );
  const r = await run(['-f', file]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`^${file.replace(/[.]/g, '\\.')}:12:7: error UNKNOWN_FIELD: spec\\.http\\[0\\]\\.route\\[1\\]\\.wieght`, 'm'));
  assert.match(r.stdout, /error [A-Z_]+: spec\.http\[0\]\.route(\[\d\]\.weight)?: .*(weight|sum)/i);
  const json = await run(['-f', file, '-o', 'json']);
  assert.equal(json.code, 1);
  assert.ok(JSON.parse(json.stdout).diagnostics.length >= 2);
});

test('valid Istio that Weft does not implement yet is a warning naming what will be ignored (exit 0)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-analyze-'));
  await writeFile(
    join(dir, 'tcp.yaml'),
    'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: db}\nspec:\n  hosts: [db]\n  tcp:\n  - route:\n    - destination: {host: db}\n',
  );
  const r = await run(['-f', dir]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /warning NOT_IMPLEMENTED: spec\.tcp: valid Istio but not implemented by Weft yet; it will be ignored/);
});
