// Header operations (set / add / remove), compiled once per route or destination (pure).

import type { HeaderOps } from '../../wire/snapshot.ts';

export type HeaderBag = Record<string, string | string[] | number | undefined>;
export type HeaderEditor = (headers: HeaderBag) => void;

/** Istio's order: remove, then set (replacing), then add (appending). Names are lowercased. */
export function compileHeaderOps(ops: HeaderOps | undefined): HeaderEditor | undefined {
  if (!ops || (!ops.set && !ops.add && !ops.remove)) return undefined;
  const remove = (ops.remove ?? []).map((n) => n.toLowerCase());
  const set = Object.entries(ops.set ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  const add = Object.entries(ops.add ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  return (h) => {
    for (const n of remove) delete h[n];
    for (const [k, v] of set) h[k] = v;
    for (const [k, v] of add) {
      const prev = h[k];
      if (prev === undefined) h[k] = v;
      else if (Array.isArray(prev)) h[k] = [...prev, v];
      else h[k] = [String(prev), v];
    }
  };
}

/** Destination-level operations first, then the route's, as Envoy applies them. */
export function chain(...editors: Array<HeaderEditor | undefined>): HeaderEditor | undefined {
  const list = editors.filter((e): e is HeaderEditor => e !== undefined);
  if (list.length === 0) return undefined;
  if (list.length === 1) return list[0];
  return (h) => {
    for (const e of list) e(h);
  };
}
