// Watch mesh files and folders; call back once per burst of changes.

import { watch, type FSWatcher, statSync } from 'node:fs';

/**
 * Editors save in one write or a write-and-rename, whose events come within a few milliseconds;
 * 30 ms gathers them without holding a change back (issue 3 asks for a change to reach every
 * proxy within 100 ms). A burst still half-written when read is retried by the caller.
 */
export const DEBOUNCE_MS = 30;

export function watchPaths(paths: readonly string[], onChange: () => void, debounceMs = DEBOUNCE_MS): { close(): void } {
  const watchers: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  for (const p of paths) {
    try {
      const dir = statSync(p).isDirectory();
      watchers.push(watch(p, { recursive: dir, persistent: false }, fire));
    } catch {
      // a path that does not exist was already reported by the loader
    }
  }
  return {
    close() {
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
