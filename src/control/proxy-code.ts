// The sidecar's code as plain JavaScript, stripped of types once per `weft up`, so proxies skip Node's TypeScript stripper.
//
// Why: the first .ts file a process loads brings in Node's type stripper (a WebAssembly build of
// swc), about 30 MiB of resident memory in every sidecar for work done once. `weft up` strips the
// proxy's modules here, in the control plane, and bin/weft-proxy.js serves them to each sidecar
// from this copy. Positions are kept (types become spaces), so stack traces still point at the
// right lines of the .ts files; a module missing from the copy is loaded from source as usual.

import { stripTypeScriptTypes } from 'node:module';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the copy mirrors paths relative to it (src/proxy/main.ts → DIR/src/proxy/main.ts). */
export const CODE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROXY_ENTRY = join(CODE_ROOT, 'src/proxy/main.ts');

/** Relative module specifiers in static imports/exports and in import('…') with a literal. */
const SPECIFIERS = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+\.ts)['"]/g;

/** Strip the entry and every module it reaches into `outDir`; returns how many modules. */
export async function prepareProxyCode(outDir: string, entry: string = PROXY_ENTRY): Promise<number> {
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  while (queue.length) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    for (const m of source.matchAll(SPECIFIERS)) queue.push(resolve(dirname(file), m[1]!));
    const out = join(outDir, relative(CODE_ROOT, file));
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, quietly(() => stripTypeScriptTypes(source, { mode: 'strip' })));
  }
  return seen.size;
}

/** Node marks stripTypeScriptTypes experimental and warns on first use; the warning is noise for users here. */
function quietly<T>(f: () => T): T {
  const emit = process.emitWarning;
  process.emitWarning = (() => {}) as typeof process.emitWarning;
  try {
    return f();
  } finally {
    process.emitWarning = emit;
  }
}
