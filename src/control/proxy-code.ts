// The sidecar's code as one CommonJS file, bundled once per `weft up`, so proxies load neither
// Node's TypeScript stripper nor its ES-module loader.
//
// Why: every sidecar is a Node process, and what Node loads before any of Weft's code counts in
// each. The first .ts file a process loads brings in Node's type stripper (a WebAssembly build of
// swc, ~30 MiB resident), and an ES-module entry brings in the ES-module loader (~13 MiB: a bare
// `node:http` server idles at 61 MiB as an ES module, 47 as CommonJS). `weft up` bundles the
// proxy's modules here, in the control plane, with esbuild, and bin/weft-proxy.cjs runs each
// sidecar from the bundle. A source map is written beside it (`node --enable-source-maps` maps
// stack traces back to the .ts files); without a bundle the launcher runs the proxy from source.

import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const CODE_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const PROXY_ENTRY = join(CODE_ROOT, 'src/proxy/main.ts');
/** The bundle's file name in the directory prepareProxyCode fills (bin/weft-proxy.cjs looks for it). */
export const PROXY_BUNDLE = 'proxy.cjs';

/** Bundle the entry and every module it reaches into `outDir`; returns how many modules. */
export async function prepareProxyCode(outDir: string, entry: string = PROXY_ENTRY): Promise<number> {
  // Loaded here only: nothing else of weft needs a bundler.
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [resolve(entry)],
    outfile: join(outDir, PROXY_BUNDLE),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    sourcemap: 'external',
    // Drops the comments esbuild keeps: a few non-Latin-1 characters in them (em dashes) make V8 hold
    // the whole source as UTF-16, and it stays in each proxy's heap (470 KiB instead of 175).
    minifyWhitespace: true,
    metafile: true,
    logLevel: 'silent',
  });
  // import.meta is empty in a CommonJS bundle: a proxy module that used it would misbehave there.
  const meta = result.warnings.find((w) => w.text.includes('import.meta'));
  if (meta) throw new Error(`${meta.location?.file ?? 'a proxy module'} uses import.meta, which a CommonJS bundle does not have`);
  return Object.keys(result.metafile.inputs).length;
}
