// A configuration delta applied to the snapshot a proxy runs: the next snapshot, sharing every
// virtual host and cluster the delta leaves alone (compile.ts reuses what it compiled for those).

import type { ClusterConfig, ConfigDelta, ProxySnapshot, VirtualHostConfig } from '../wire/snapshot.ts';
import { checkBase } from './endpoints-update.ts';

/** `current` with the delta's virtual hosts and clusters replaced, added and removed; throws (→ NACK) if it does not fit. */
export function withDelta(current: ProxySnapshot | undefined, delta: ConfigDelta): ProxySnapshot {
  const base = checkBase(current, delta, 'configuration delta');
  const what = `configuration delta ${delta.version}`;
  for (const key of ['virtualHosts', 'removedVirtualHosts', 'clusters', 'removedClusters'] as const)
    if (!Array.isArray(delta[key])) throw new Error(`${what} has no list of ${key}`);
  if (delta.virtualHostOrder !== undefined && !Array.isArray(delta.virtualHostOrder)) throw new Error(`${what}: virtualHostOrder is not a list`);

  const virtualHosts = merged(base.outbound.virtualHosts, delta.virtualHosts, delta.removedVirtualHosts, `${what}: virtual host`);
  let orderedHosts = virtualHosts;
  if (delta.virtualHostOrder) {
    const byName = new Map(virtualHosts.map((v) => [v.name, v]));
    orderedHosts = delta.virtualHostOrder.map((name) => {
      const v = byName.get(name);
      if (!v) throw new Error(`${what} orders virtual host ${name}, which it neither keeps nor sends`);
      return v;
    });
    if (orderedHosts.length !== virtualHosts.length) throw new Error(`${what}: virtualHostOrder names ${orderedHosts.length} virtual hosts, and there are ${virtualHosts.length}`);
  }
  const clusters = merged(base.clusters, delta.clusters, delta.removedClusters, `${what}: cluster`);
  return { ...base, version: delta.version, outbound: { ...base.outbound, virtualHosts: orderedHosts }, clusters };
}

/**
 * `list` with the items named in `removed` left out, those of `changed` in place of the ones of
 * the same name, and new ones after the rest. Unchanged items are the very same objects.
 */
function merged<T extends VirtualHostConfig | ClusterConfig>(list: readonly T[], changed: readonly T[], removed: readonly string[], what: string): T[] {
  const replacing = new Map<string, T>();
  for (const item of changed) {
    if (typeof item?.name !== 'string') throw new Error(`${what} without a name`);
    if (replacing.has(item.name)) throw new Error(`${what} ${item.name} is sent twice`);
    replacing.set(item.name, item);
  }
  const gone = new Set(removed);
  const out: T[] = [];
  for (const item of list) {
    if (gone.delete(item.name)) {
      if (replacing.has(item.name)) throw new Error(`${what} ${item.name} is both removed and sent`);
      continue;
    }
    const next = replacing.get(item.name);
    if (next) replacing.delete(item.name);
    out.push(next ?? item);
  }
  if (gone.size > 0) throw new Error(`${what}s to remove that this proxy does not have: ${[...gone].slice(0, 3).join(', ')}`);
  // What is left is new: it goes after the others.
  for (const item of replacing.values()) out.push(item);
  return out;
}
