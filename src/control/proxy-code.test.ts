// The sidecar's types-stripped copy: what it holds, and that the launcher really runs from it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CODE_ROOT, prepareProxyCode } from './proxy-code.ts';

const LAUNCHER = join(CODE_ROOT, 'bin/weft-proxy.js');

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) out.push(relative(dir, join(e.parentPath, e.name)));
  return out.sort();
}

test('the copy holds every module the proxy reaches, types stripped, positions kept, nothing of the control plane', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-proxy-code-'));
  const n = await prepareProxyCode(dir);
  const all = await files(dir);
  assert.equal(all.length, n);
  assert.ok(all.includes('src/proxy/main.ts') && all.includes('src/proxy/pipeline.ts') && all.includes('src/wire/snapshot.ts'), all.join(' '));
  assert.deepEqual(all.filter((f) => /^src\/(control|api|translate|registry|cli)\//.test(f)), []);
  const source = await readFile(join(CODE_ROOT, 'src/proxy/upstream/limits.ts'), 'utf8');
  const stripped = await readFile(join(dir, 'src/proxy/upstream/limits.ts'), 'utf8');
  assert.equal(stripped.length, source.length, 'types become spaces, so line and column numbers stay');
  assert.notEqual(stripped, source);
  assert.doesNotMatch(stripped, /^export interface /m);
});

test('the launcher runs the proxy from the copy when WEFT_PROXY_CODE names it, from source otherwise', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'weft-proxy-code-'));
  await prepareProxyCode(dir);
  await writeFile(join(dir, 'src/proxy/main.ts'), "process.stdout.write('from the copy\\n');\n");
  const run = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, [LAUNCHER], { env: { PATH: process.env.PATH ?? '', ...env } }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
  assert.equal((await run({ WEFT_PROXY_CODE: dir })).stdout, 'from the copy\n');
  const fromSource = await run({});
  assert.equal(fromSource.code, 2);
  assert.match(fromSource.stderr, /WEFT_PROXY_ID is not set/);
});
