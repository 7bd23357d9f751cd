// One full collection once a proxy is configured: what start-up left behind is given back.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * A full, memory-reducing ("last resort") collection. Start-up garbage — module compilation, the
 * first snapshot's JSON, the certificate request — otherwise stays until the first full
 * collection, which an idle proxy may not run for a long time, and the heap keeps the size
 * start-up grew it to: ~1.6 MiB more resident per idle proxy (docs/performance.md, Memory).
 *
 * `gc` is taken from a fresh context with `--expose-gc` set only for that moment: given at start,
 * the flag changes V8's flag hash and Node then rejects the code cache of every built-in module
 * it loads (+0.3–0.5 MiB and a slower start). Returns false when this Node cannot do it; the
 * proxy runs on either way.
 */
export function collectStartupGarbage(): boolean {
  let gc: unknown;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc');
  } catch {
    gc = undefined;
  } finally {
    resetExposeGc();
  }
  if (typeof gc !== 'function') return false;
  try {
    gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    return true;
  } catch {
    return false;
  }
}

/** Contexts made from now on get no `gc` (never throws: this runs from a timer, where a throw would end the proxy). */
function resetExposeGc(): void {
  try {
    setFlagsFromString('--no-expose-gc');
  } catch {
    // A Node without the flag never exposed it either.
  }
}
