// The module seams ARCHITECTURE.md describes, kept honest by reading the imports.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

async function imports(folder: string): Promise<Array<{ file: string; spec: string; target: string }>> {
  const out: Array<{ file: string; spec: string; target: string }> = [];
  for (const f of await files(join(SRC, folder))) {
    const text = await readFile(f, 'utf8');
    for (const m of text.matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)) {
      const spec = m[1];
      const target = spec.startsWith('.') ? relative(SRC, join(f, '..', spec)) : spec;
      out.push({ file: relative(SRC, f), spec, target });
    }
  }
  return out;
}

test('the proxy never imports the control plane, the api layer or translation', async () => {
  const bad = (await imports('proxy')).filter((i) => /^(control|api|translate|registry|cli)\//.test(i.target));
  assert.deepEqual(bad, []);
});

test('translation, the registry, the api layer and core open no sockets and spawn nothing', async () => {
  for (const folder of ['translate', 'api', 'registry', 'core']) {
    const bad = (await imports(folder)).filter((i) => /^(node:)?(net|http|http2|https|tls|dgram|child_process)$/.test(i.target) || /^undici/.test(i.target));
    assert.deepEqual(bad, [], folder);
  }
});

test('the wire contract depends on nothing but node built-ins', async () => {
  const bad = (await imports('wire')).filter((i) => !i.target.startsWith('wire/') && !i.target.startsWith('node:'));
  assert.deepEqual(bad, []);
});
