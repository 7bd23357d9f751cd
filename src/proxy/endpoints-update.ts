// An endpoint update applied to the snapshot a proxy runs: the next snapshot, sharing every part
// the update leaves alone (compile.ts reuses what it compiled for those parts).

import { WIRE_FORMAT, type ClusterConfig, type EndpointsUpdate, type ProxySnapshot } from '../wire/snapshot.ts';

/** `current` with the update's clusters' endpoint lists replaced; throws (→ NACK) if it does not fit. */
export function withEndpoints(current: ProxySnapshot | undefined, update: EndpointsUpdate): ProxySnapshot {
  if (update.wire !== WIRE_FORMAT) throw new Error(`endpoint update wire format ${update.wire} is not ${WIRE_FORMAT}`);
  if (!Number.isInteger(update.version)) throw new Error('endpoint update has no integer version');
  if (!current) throw new Error(`endpoint update ${update.version} came before any configuration`);
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
