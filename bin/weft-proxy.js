#!/usr/bin/env node
// Sidecar launcher: loads the proxy's modules from the types-stripped copy `weft up` prepared (src/control/proxy-code.ts says why), then starts the proxy.
import { registerHooks } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative } from 'node:path';

const copy = process.env.WEFT_PROXY_CODE;
if (copy && typeof registerHooks === 'function') {
  const root = fileURLToPath(new URL('../', import.meta.url));
  registerHooks({
    load(url, context, nextLoad) {
      if (url.startsWith('file:') && url.endsWith('.ts')) {
        let source;
        try {
          source = readFileSync(join(copy, relative(root, fileURLToPath(url))), 'utf8');
        } catch {
          // not in the copy: Node strips it from source, as without the copy
        }
        if (source !== undefined) return { format: 'module', source, shortCircuit: true };
      }
      return nextLoad(url, context);
    },
  });
}
await import('../src/proxy/main.ts');
