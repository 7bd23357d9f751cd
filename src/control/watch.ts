// Watch mesh files and folders; call back once per burst of changes.

import { watch, type FSWatcher, statSync } from 'node:fs';

export function watchPaths(paths: readonly string[], onChange: () => void, debounceMs = 150): { close(): void } {
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
