// The sidecar's bundle: what it holds, and that the launcher really runs the proxy from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CODE_ROOT, PROXY_BUNDLE, prepareProxyCode } from './proxy-code.ts';

const LAUNCHER = join(CODE_ROOT, 'bin/weft-proxy.cjs');

const run = (env: Record<string, string>) =>
  promisify(execFile)(process.execPath, [LAUNCHER], { env: { PATH: process.env.PATH ?? '', ...env } }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => e,
  );

test('the bundle is CommonJS holding every module the proxy reaches, nothing of the control plane, and runs', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-proxy-code-'));
  const n = await prepareProxyCode(dir);
  assert.ok(n > 30, `${n} modules`);
  const bundle = await readFile(join(dir, PROXY_BUNDLE), 'utf8');
  const map = JSON.parse(await readFile(join(dir, `${PROXY_BUNDLE}.map`), 'utf8')) as { sources: string[] };
  const sources = map.sources.map((s) => relative(CODE_ROOT, resolve(dir, s)));
  for (const f of ['src/proxy/main.ts', 'src/proxy/pipeline.ts', 'src/proxy/upstream/h1.ts', 'src/wire/snapshot.ts']) assert.ok(sources.includes(f), `${f} in ${sources.join(' ')}`);
  assert.deepEqual(sources.filter((f) => /^src\/(control|api|translate|registry|cli)\//.test(f)), []);
  assert.doesNotMatch(bundle, /^\s*(import|export)\s/m, 'no ES-module syntax left');
  // The `performance` global loads node's perf_hooks (~0.3 MiB per proxy); core/clock.ts has the time.
  assert.doesNotMatch(bundle, /\bperformance\s*\./, 'no use of the performance global');
  // Run for real: the bundled main reads its bootstrap and refuses to start without one.
  const r = await run({ WEFT_PROXY_CODE: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /WEFT_PROXY_ID is not set/);
});

test('the launcher runs the proxy from the bundle when WEFT_PROXY_CODE names it, from source otherwise', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-proxy-code-'));
  await writeFile(join(dir, PROXY_BUNDLE), "process.stdout.write('from the bundle ' + typeof require + '\\n');\n");
  assert.equal((await run({ WEFT_PROXY_CODE: dir })).stdout, 'from the bundle function\n');
  const fromSource = await run({});
  assert.equal(fromSource.code, 2);
  assert.match(fromSource.stderr, /WEFT_PROXY_ID is not set/);
  const missing = await run({ WEFT_PROXY_CODE: join(dir, 'nowhere') });
  assert.equal(missing.code, 2, 'no bundle there: from source');
});
