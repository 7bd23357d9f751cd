// Positions in YAML source: offsets to line:col, and field paths to the node they name.
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair } from 'yaml';
import type { SourcePos } from './types.ts';
import { parsePath } from './paths.ts';

/** One parsed YAML document plus what is needed to report positions in it. */
export interface YamlSource {
  file: string;
  lineCounter: LineCounter;
  doc: Document;
}

export function posAt(src: YamlSource, offset: number): SourcePos {
  const { line, col } = src.lineCounter.linePos(offset);
  // linePos reports line 0 before the first newline has been seen; the file is 1-based.
  return { file: src.file, line: Math.max(line, 1), col: Math.max(col, 1) };
}

/** Follows YAML aliases (`*anchor`) so validators only ever see maps, lists and scalars. */
export function resolveNode(node: unknown, doc: Document): Node | null {
  let current = node;
  // An alias can point at another alias; a small bound guards against malicious cycles.
  for (let i = 0; i < 32 && isAlias(current); i++) current = current.resolve(doc);
  if (current === null || current === undefined || isAlias(current)) return null;
  return current as Node;
}

/** `key:` with nothing after it, or an explicit `null` / `~`. */
export function isNullNode(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

export function startOf(node: unknown): number | undefined {
  const range = (node as Node | null)?.range;
  return range ? range[0] : undefined;
}

/**
 * Where to point for a map entry. A scalar value is the precise spot (`weight: -1` points at
 * `-1`); for a nested map or list, or an empty value, the key reads better than the first child.
 */
export function entryOffset(pair: Pair, doc: Document): number | undefined {
  const value = resolveNode(pair.value, doc);
  if (isScalar(value) && value.value !== null && isScalar(pair.value)) return startOf(value);
  return startOf(pair.key) ?? startOf(value);
}

/**
 * protobuf's JSON mapping of a field name: drop each `_` and upper-case the next character
 * (`retry_on` → `retryOn`, `consecutive_5xx_errors` → `consecutive5xxErrors`).
 */
export function snakeToCamel(name: string): string {
  return name.replace(/_(.?)/g, (_m, c: string) => c.toUpperCase());
}

/** The key of a map entry as a string (YAML allows numbers or booleans as keys: `8080:`). */
export function keyString(pair: Pair, doc: Document): string | undefined {
  const key = resolveNode(pair.key, doc);
  if (!isScalar(key) || key.value === null || typeof key.value === 'object') return undefined;
  return String(key.value);
}

/**
 * Offset of the node a field path names, or of its nearest existing parent. With `protoNames`
 * a path segment `retryOn` also finds a `retry_on:` key, since validated specs use camelCase.
 */
export function offsetOfPath(root: Node | null, path: string, doc: Document, protoNames: boolean): number {
  let offset = startOf(root) ?? 0;
  let current = root;
  for (const segment of parsePath(path)) {
    if (isMap(current) && typeof segment === 'string') {
      const pair = current.items.find((p) => {
        const key = keyString(p, doc);
        return key === segment || (protoNames && key !== undefined && snakeToCamel(key) === segment);
      });
      if (!pair) break;
      offset = entryOffset(pair, doc) ?? offset;
      current = resolveNode(pair.value, doc);
    } else if (isSeq(current) && typeof segment === 'number') {
      const item = current.items[segment];
      if (item === undefined) break;
      current = resolveNode(item, doc);
      offset = startOf(item) ?? startOf(current) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}
