// Incremental pushes: is a change only to endpoints, and which clusters' endpoints did it change.
//
// As Istio does (a "full push" versus an EDS-only one), the control plane translates a proxy's
// whole snapshot only when something other than endpoints changed; otherwise it recomputes each
// cluster's endpoints and sends those that differ (wire/snapshot.ts EndpointsUpdate).

import type { Resource } from '../api/types.ts';
import { endpointRecords, sameRecords, type EndpointInfo, type Registry } from '../registry/registry.ts';
import { clusterEndpoints, type EndpointContext } from '../translate/translate.ts';
import type { ClusterConfig, ClusterEndpoints } from '../wire/snapshot.ts';

/**
 * Kinds whose only effect on a snapshot is endpoint lists. A WorkloadEntry adds an endpoint to the
 * services that select it; it defines no service, route or policy.
 */
const ENDPOINT_KINDS: ReadonlySet<string> = new Set(['WorkloadEntry']);

/** A resource as JSON, without where it was read from (an edit above it in its file moves that). */
const jsonOf = new WeakMap<Resource, string>();
function resourceJson(r: Resource): string {
  let json = jsonOf.get(r);
  if (json === undefined) {
    json = JSON.stringify([r.apiVersion, r.kind, r.metadata, r.spec]);
    jsonOf.set(r, json);
  }
  return json;
}

/**
 * True when `after` differs from `before` in endpoint resources only: every other resource is the
 * same, in the same order (order matters: the first VirtualService to claim a host owns it).
 */
export function onlyEndpointsDiffer(before: readonly Resource[], after: readonly Resource[]): boolean {
  return sameResources(before, after, (kind) => !ENDPOINT_KINDS.has(kind));
}

/** True when `before` and `after` have the same resources of the kinds `counts` picks, in the same order. */
export function sameResources(before: readonly Resource[], after: readonly Resource[], counts: (kind: string) => boolean): boolean {
  if (before === after) return true;
  // One walk over both lists, each skipping what does not count (no filtered copies of 10 000s of resources).
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < before.length && !counts(before[i]!.kind)) i++;
    while (j < after.length && !counts(after[j]!.kind)) j++;
    if (i === before.length || j === after.length) return i === before.length && j === after.length;
    const a = before[i++]!;
    const b = after[j++]!;
    if (a !== b && resourceJson(a) !== resourceJson(b)) return false;
  }
}

/** A cluster as last sent to a proxy: where its endpoints come from, and their JSON as sent. */
export interface SentCluster {
  name: string;
  host: string;
  port: number;
  subset: string | undefined;
  /**
   * The registry's endpoints of the cluster's service they were made from. The registry keeps one
   * record per unchanged source (registry.ts), so the same records mean the same endpoints.
   */
  inputs: readonly EndpointInfo[];
  /** The endpoints as sent, until their JSON is first needed (then dropped). */
  endpoints?: ClusterConfig['endpoints'];
  json?: string;
}

/** The clusters of a whole snapshot just translated from `registry`. */
export function sentClusters(clusters: readonly ClusterConfig[], registry: Registry): SentCluster[] {
  return clusters.map((c) => ({
    name: c.name,
    host: c.service.host,
    port: c.service.port,
    subset: c.subset,
    inputs: endpointRecords(registry, c.service.host),
    endpoints: c.endpoints,
  }));
}

/** Endpoint lists worked out in one push, by cluster name, for proxies that share an EndpointContext. */
export type ComputedEndpoints = Map<string, { endpoints: ClusterEndpoints['endpoints']; json: string }>;

/**
 * The clusters whose endpoints `ctx` now gives differently from what was sent, with their new
 * lists; `sent` is updated to them (the caller sends them all or drops the proxy's record).
 * `computed` shares the work between proxies of one namespace.
 */
export function endpointChanges(sent: readonly SentCluster[], ctx: EndpointContext, computed: ComputedEndpoints): ClusterEndpoints[] {
  const changes: ClusterEndpoints[] = [];
  for (const c of sent) {
    // Within a configuration generation (subsets, ports, mTLS settings fixed) a cluster's endpoints
    // depend only on its service's endpoint records: the same records, nothing to work out.
    const inputs = endpointRecords(ctx.registry, c.host);
    if (sameRecords(inputs, c.inputs)) continue;
    c.inputs = inputs;
    let now = computed.get(c.name);
    if (!now) {
      const endpoints = clusterEndpoints(ctx, c.host, c.port, c.subset);
      computed.set(c.name, (now = { endpoints, json: JSON.stringify(endpoints) }));
    }
    if (c.json === undefined) {
      c.json = JSON.stringify(c.endpoints);
      c.endpoints = undefined;
    }
    if (now.json === c.json) continue;
    c.json = now.json;
    changes.push({ name: c.name, endpoints: now.endpoints });
  }
  return changes;
}
