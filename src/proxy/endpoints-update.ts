// An endpoint update applied to the snapshot a proxy runs: the next snapshot, sharing every part
// the update leaves alone (compile.ts reuses what it compiled for those parts).

import { WIRE_FORMAT, type ClusterConfig, type EndpointsUpdate, type ProxySnapshot } from '../wire/snapshot.ts';

/** `current` with the update's clusters' endpoint lists replaced; throws (→ NACK) if it does not fit. */
export function withEndpoints(current: ProxySnapshot | undefined, update: EndpointsUpdate): ProxySnapshot {
  current = checkBase(current, update, 'endpoint update');
  if (!Array.isArray(update.clusters)) throw new Error(`endpoint update ${update.version} has no list of clusters`);
  const replaced = new Map<string, ClusterConfig['endpoints']>();
  for (const c of update.clusters) {
    if (typeof c?.name !== 'string' || !Array.isArray(c.endpoints)) throw new Error(`endpoint update ${update.version}: each cluster needs a name and a list of endpoints`);
    replaced.set(c.name, c.endpoints);
  }
  let found = 0;
  const clusters = current.clusters.map((c) => {
    const endpoints = replaced.get(c.name);
    if (!endpoints) return c;
    found++;
    return { ...c, endpoints };
  });
  if (found !== replaced.size) {
    const known = new Set(current.clusters.map((c) => c.name));
    const unknown = [...replaced.keys()].filter((n) => !known.has(n));
    throw new Error(`endpoint update ${update.version} names clusters this proxy does not have: ${unknown.slice(0, 3).join(', ')}`);
  }
  return { ...current, version: update.version, clusters };
}

/**
 * The snapshot an update (`what`) applies to: `current`, if it is the version the update was made
 * against. Anything else — an update before any snapshot, or after a version this proxy refused —
 * is refused, and the control plane follows a refusal with the whole snapshot.
 */
export function checkBase(current: ProxySnapshot | undefined, update: { wire: unknown; version: unknown; base: unknown }, what: string): ProxySnapshot {
  if (update.wire !== WIRE_FORMAT) throw new Error(`${what} wire format ${update.wire} is not ${WIRE_FORMAT}`);
  if (!Number.isInteger(update.version)) throw new Error(`${what} has no integer version`);
  if (!current) throw new Error(`${what} ${update.version} came before any configuration`);
  if (update.base !== current.version) throw new Error(`${what} ${update.version} applies to version ${update.base}, and this proxy runs version ${current.version}`);
  return current;
}
