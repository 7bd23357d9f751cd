// Field paths such as `spec.http[0].route[1].weight`: how diagnostics name the field they are about.

/** One step of a path: a field or map key (string) or a list index (number). */
export type Segment = string | number;

// Keys that read well after a dot. Anything else (dots, slashes, spaces: label keys such as
// `app.kubernetes.io/name`, header names are fine) is written as a quoted key: `labels["a.b/c"]`.
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Appends a field, map key or list index to a path. */
export function joinPath(base: string, segment: Segment): string {
  if (typeof segment === 'number') return `${base}[${segment}]`;
  if (PLAIN_KEY.test(segment)) return base === '' ? segment : `${base}.${segment}`;
  return `${base}[${JSON.stringify(segment)}]`;
}

/** Builds a path from segments; the inverse of `parsePath`. */
export function formatPath(segments: readonly Segment[]): string {
  return segments.reduce<string>((path, segment) => joinPath(path, segment), '');
}

/**
 * Splits a path into segments. Accepts what `joinPath` writes: `a.b`, `a[0]`, `a["x.y"]`.
 * An unparsable tail is dropped, so a caller looking up a position falls back to the parent.
 */
export function parsePath(path: string): Segment[] {
  const segments: Segment[] = [];
  let i = 0;
  while (i < path.length) {
    const c = path[i];
    if (c === '.') {
      i++;
      continue;
    }
    if (c === '[') {
      if (path[i + 1] === '"') {
        // A quoted key: find the closing quote that is not escaped, then let JSON unescape it.
        let j = i + 2;
        while (j < path.length && path[j] !== '"') j += path[j] === '\\' ? 2 : 1;
        try {
          segments.push(JSON.parse(path.slice(i + 1, j + 1)) as string);
        } catch {
          return segments;
        }
        i = j + 2; // past `"]`
        continue;
      }
      const close = path.indexOf(']', i);
      if (close < 0) return segments;
      const index = Number(path.slice(i + 1, close));
      if (!Number.isInteger(index)) return segments;
      segments.push(index);
      i = close + 1;
      continue;
    }
    let j = i;
    while (j < path.length && path[j] !== '.' && path[j] !== '[') j++;
    segments.push(path.slice(i, j));
    i = j;
  }
  return segments;
}

/** True when `path` is `prefix` or a field below it (`spec.a` is under `spec` but not under `spe`). */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === '') return true;
  if (!path.startsWith(prefix)) return false;
  const next = path[prefix.length];
  return next === undefined || next === '.' || next === '[';
}
