// Configuration deltas: what a proxy holds, piece by piece, and which pieces a new snapshot changes.
//
// As Envoy's incremental xDS, a proxy that holds the version the control plane last sent it is
// sent only the virtual hosts and clusters that differ (wire/snapshot.ts ConfigDelta). A piece is
// compared by identity first (clusters come from the control plane's cluster cache, so an
// unchanged one is the very same object) and by its JSON otherwise.

import type { ClusterConfig, ClusterEndpoints, ConfigDelta, ProxySnapshot, VirtualHostConfig } from '../wire/snapshot.ts';

/** One virtual host or cluster as a proxy holds it: the object sent, and its JSON once worked out. */
interface SentPiece<T> {
  config?: T;
  json?: string;
}

/**
 * The virtual hosts and clusters a proxy holds, as last sent. Proxies that see the same routes are
 * sent the very same translation (control-plane.ts), so they share one of these, and comparing it
 * with the next translation is done once for all of them. What it holds never changes once made
 * (comparing only notes a piece's JSON in it): an endpoint update makes a new one (endpointsChanged).
 */
interface HeldOutbound {
  virtualHostOrder: string[];
  virtualHosts: Map<string, SentPiece<VirtualHostConfig>>;
  clusters: Map<string, SentPiece<ClusterConfig>>;
}

/** What a proxy holds, as last sent: enough to tell which pieces of a new snapshot differ. */
export interface SentConfig {
  /** JSON of everything but the version, virtual hosts and clusters (proxy, inbound, trust bundle). */
  rest: string;
  outbound: HeldOutbound;
}

/** The rest of a snapshot: all of it but the version and the lists a delta can carry. */
function restJson(s: ProxySnapshot): string {
  return JSON.stringify({ ...s, version: undefined, clusters: undefined, outbound: { ...s.outbound, virtualHosts: undefined } });
}

function byName<T extends { name: string }>(list: readonly T[]): Map<string, SentPiece<T>> | undefined {
  const m = new Map<string, SentPiece<T>>();
  for (const config of list) m.set(config.name, { config });
  // Two pieces of one name cannot be told apart in a delta: such a snapshot always goes whole.
  return m.size === list.length ? m : undefined;
}

/** A new HeldOutbound of `s`'s lists; undefined when `s` could not be followed by a delta. */
function heldOutbound(s: ProxySnapshot): HeldOutbound | undefined {
  const virtualHosts = byName(s.outbound.virtualHosts);
  const clusters = byName(s.clusters);
  if (!virtualHosts || !clusters) return undefined;
  return { virtualHostOrder: s.outbound.virtualHosts.map((v) => v.name), virtualHosts, clusters };
}

/** The HeldOutbound of each translation's lists, made once for all the proxies it is sent to. */
const heldOfLists = new WeakMap<readonly VirtualHostConfig[], { clusters: readonly ClusterConfig[]; held: HeldOutbound | undefined }>();

/** What a proxy holds once it has `s`; undefined when `s` could not be followed by a delta. */
export function sentConfig(s: ProxySnapshot): SentConfig | undefined {
  let known = heldOfLists.get(s.outbound.virtualHosts);
  if (!known || known.clusters !== s.clusters) heldOfLists.set(s.outbound.virtualHosts, (known = { clusters: s.clusters, held: heldOutbound(s) }));
  return known.held && { rest: restJson(s), outbound: known.held };
}

/**
 * Each piece's JSON, made once: proxies that see the same routes are sent the very same objects
 * (the control plane translates them once), so one push stringifies each new piece once.
 */
const jsonOfPiece = new WeakMap<object, string>();
function pieceJson(config: object): string {
  let json = jsonOfPiece.get(config);
  if (json === undefined) jsonOfPiece.set(config, (json = JSON.stringify(config)));
  return json;
}

/** Whether `config` is what `sent` holds; on a match by JSON, `sent` takes over `config` (identity next time). */
function samePiece<T extends object>(sent: SentPiece<T> | undefined, config: T): boolean {
  if (!sent) return false;
  if (sent.config === config) return true;
  if (sent.json === undefined) {
    if (sent.config === undefined) return false; // changed by an endpoint update: its JSON is unknown
    sent.json = pieceJson(sent.config);
  }
  if (sent.json !== pieceJson(config)) return false;
  sent.config = config;
  return true;
}

type OutboundChange =
  | { kind: 'same' }
  | { kind: 'whole' }
  | { kind: 'delta'; delta: Omit<ConfigDelta, 'version' | 'base'>; holds: HeldOutbound };

/**
 * How `next` differs from what a proxy holds: `same` (nothing to send), a delta (without version
 * and base, which the caller sets) with what the proxy will then hold, or `whole` when only the
 * whole snapshot will do (something besides virtual hosts and clusters changed).
 */
export function configDelta(
  sent: SentConfig,
  next: ProxySnapshot,
): { kind: 'same' } | { kind: 'whole' } | { kind: 'delta'; delta: Omit<ConfigDelta, 'version' | 'base'>; holds: SentConfig } {
  const rest = restJson(next);
  if (rest !== sent.rest) return { kind: 'whole' };
  const change = outboundChange(sent.outbound, next);
  return change.kind === 'delta' ? { kind: 'delta', delta: change.delta, holds: { rest, outbound: change.holds } } : change;
}

/** The last change worked out from each HeldOutbound, and to which lists: proxies that share both share it. */
const lastChange = new WeakMap<HeldOutbound, { virtualHosts: readonly VirtualHostConfig[]; clusters: readonly ClusterConfig[]; change: OutboundChange }>();

function outboundChange(sent: HeldOutbound, next: ProxySnapshot): OutboundChange {
  const known = lastChange.get(sent);
  if (known && known.virtualHosts === next.outbound.virtualHosts && known.clusters === next.clusters) return known.change;
  const change = workOutChange(sent, next);
  lastChange.set(sent, { virtualHosts: next.outbound.virtualHosts, clusters: next.clusters, change });
  return change;
}

function workOutChange(sent: HeldOutbound, next: ProxySnapshot): OutboundChange {
  const holds = heldOutbound(next);
  if (!holds) return { kind: 'whole' };
  const virtualHosts = changedPieces(sent.virtualHosts, next.outbound.virtualHosts, holds.virtualHosts);
  const clusters = changedPieces(sent.clusters, next.clusters, holds.clusters);
  const removedVirtualHosts = [...sent.virtualHosts.keys()].filter((n) => !holds.virtualHosts.has(n));
  const removedClusters = [...sent.clusters.keys()].filter((n) => !holds.clusters.has(n));
  // Kept hosts keep their places and new ones go last, unless the order says otherwise.
  const kept = sent.virtualHostOrder.filter((n) => holds.virtualHosts.has(n));
  const implied = [...kept, ...holds.virtualHostOrder.filter((n) => !sent.virtualHosts.has(n))];
  const reordered = implied.some((n, i) => n !== holds.virtualHostOrder[i]);
  if (virtualHosts.length + clusters.length + removedVirtualHosts.length + removedClusters.length === 0 && !reordered) return { kind: 'same' };
  return {
    kind: 'delta',
    delta: {
      type: 'delta',
      wire: next.wire,
      virtualHosts,
      removedVirtualHosts,
      ...(reordered ? { virtualHostOrder: holds.virtualHostOrder } : {}),
      clusters,
      removedClusters,
    },
    holds,
  };
}

/** The pieces of `list` that `sent` does not hold as they are; `holds` keeps what is known of the rest. */
function changedPieces<T extends { name: string } & object>(sent: Map<string, SentPiece<T>>, list: readonly T[], holds: Map<string, SentPiece<T>>): T[] {
  const changed: T[] = [];
  for (const config of list) {
    const before = sent.get(config.name);
    if (samePiece(before, config)) holds.set(config.name, before!);
    else changed.push(config);
  }
  return changed;
}

/** The last endpoint update applied to each HeldOutbound: proxies that share it and get the same update share the result. */
const lastUpdate = new WeakMap<HeldOutbound, { clusters: readonly ClusterEndpoints[]; held: HeldOutbound }>();

/**
 * What the proxy holds once it applied an endpoint update of `clusters` (as the proxy does,
 * endpoints-update.ts). `sent` stays as it was: other proxies may share it.
 */
export function endpointsChanged(sent: SentConfig, clusters: readonly ClusterEndpoints[]): SentConfig {
  const known = lastUpdate.get(sent.outbound);
  if (known && sameUpdate(known.clusters, clusters)) return { rest: sent.rest, outbound: known.held };
  const held = new Map(sent.outbound.clusters);
  for (const { name, endpoints } of clusters) {
    const before = held.get(name);
    if (!before) continue;
    // Unknown (its JSON only kept): the next delta sends it whole.
    held.set(name, before.config ? { config: { ...before.config, endpoints } } : {});
  }
  const outbound = { ...sent.outbound, clusters: held };
  lastUpdate.set(sent.outbound, { clusters, held: outbound });
  return { rest: sent.rest, outbound };
}

/** The same clusters with the very same endpoint lists (one push works each list out once per namespace). */
function sameUpdate(a: readonly ClusterEndpoints[], b: readonly ClusterEndpoints[]): boolean {
  return a.length === b.length && a.every((c, i) => c.name === b[i]!.name && c.endpoints === b[i]!.endpoints);
}
