// Compile: a ProxySnapshot → frozen runtime tables. Anything invalid throws here, so the snapshot
// is NACKed and the proxy keeps its last good tables; nothing is discovered on the request path.

import type { Clock } from '../core/clock.ts';
import type { Random } from '../core/random.ts';
import {
  WIRE_FORMAT,
  type ClusterConfig,
  type ConsistentHashConfig,
  type EndpointConfig,
  type ProxyNode,
  type ProxySnapshot,
  type RouteConfig,
  type VirtualHostConfig,
} from '../wire/snapshot.ts';
import { compileRoute, type CompiledRoute } from './routing/match.ts';
import { compileRetryPolicy, type CompiledRetryPolicy } from './routing/retry.ts';
import { compileRewrite, type PathRewriter } from './routing/rewrite.ts';
import { chain, compileHeaderOps, type HeaderEditor } from './routing/headers.ts';
import { compileCors, type CompiledCors } from './routing/cors.ts';
import type { Balancer, LbEndpoint } from './upstream/lb/balancer.ts';
import { compileLbPolicy } from './upstream/lb/registry.ts';
import type { EndpointStates, EndpointState } from './upstream/endpoints.ts';
import type { ClusterState, ClusterStates } from './upstream/cluster-state.ts';
import { checkCircuitLimitsConfig } from './upstream/limits.ts';
import { checkOutlierConfig } from './upstream/outlier.ts';
import { checkFallbackConfig, compileFallback, type CompiledFallback } from './fallback/fallback.ts';
import type { FallbackCache } from './fallback/cache.ts';
import type { MeshMetrics, PeerLabels } from './observe/metrics.ts';
import { sourcePeerLabels } from './observe/peer.ts';

export interface UpstreamEndpoint {
  readonly config: EndpointConfig;
  readonly state: EndpointState;
  readonly lb: LbEndpoint;
  /** Metrics for requests this proxy sends to the endpoint (reporter=source). */
  readonly metrics: PeerLabels;
}

export interface CompiledCluster {
  readonly config: ClusterConfig;
  /**
   * The balancer over the endpoints to use now: all of them, or — with outlier detection — those
   * not ejected (rebuilt when ejections change, as Envoy rebuilds its host set).
   */
  readonly balancer: Balancer;
  /** Limits, outlier detector: this proxy's state for the cluster, kept across snapshots. */
  readonly state: ClusterState;
  /** The FallbackPolicy protecting the cluster, if any. */
  readonly fallback?: CompiledFallback<CompiledCluster>;
  readonly byKey: ReadonlyMap<string, UpstreamEndpoint>;
  /** Present when the cluster balances by consistent hash. */
  readonly hash?: ConsistentHashConfig['key'];
  /** Metrics for requests that never reached an endpoint (no healthy upstream). */
  readonly unreachedMetrics: PeerLabels;
}

export interface CompiledDestination {
  readonly cluster: CompiledCluster;
  /** Upper bound of this destination's share in [0, total). */
  readonly upTo: number;
  /** Destination-level then route-level header operations, chained once here. */
  readonly requestHeaders?: HeaderEditor;
  readonly responseHeaders?: HeaderEditor;
}

/** A route with everything it does compiled: nothing is parsed or built per request. */
export interface CompiledRouteEntry extends CompiledRoute {
  readonly destinations: readonly CompiledDestination[];
  readonly totalWeight: number;
  readonly retry?: CompiledRetryPolicy;
  readonly rewritePath?: PathRewriter;
  readonly mirrors: readonly { cluster: CompiledCluster; percent: number }[];
  readonly cors?: CompiledCors;
  /** Route-level header operations, for answers the proxy makes itself (redirect, direct response). */
  readonly requestHeaders?: HeaderEditor;
  readonly responseHeaders?: HeaderEditor;
}

export interface CompiledVirtualHost {
  readonly config: VirtualHostConfig;
  readonly routes: readonly CompiledRouteEntry[];
}

export interface RuntimeConfig {
  readonly snapshot: ProxySnapshot;
  readonly version: number;
  /** By name; the next compile reuses those whose config it is handed again (see compileSnapshot). */
  readonly clusters: ReadonlyMap<string, CompiledCluster>;
  /** In snapshot order, likewise reused. */
  readonly virtualHosts: readonly CompiledVirtualHost[];
  /** Exact domains (lowercase, with and without port). */
  readonly domains: ReadonlyMap<string, CompiledVirtualHost>;
  /** `*.suffix` domains, longest suffix first. */
  readonly wildcards: readonly { suffix: string; vhost: CompiledVirtualHost }[];
  readonly catchAll?: CompiledVirtualHost;
  /** Metrics for requests no route matched. */
  readonly noRouteMetrics: PeerLabels;
  /** This proxy's per-cluster resilience state (limits, ejections, caches), for /stats. */
  readonly resilience: ClusterStates;
}

export interface CompileDeps {
  endpoints: EndpointStates;
  metrics: MeshMetrics;
  random: Random;
  clock: Clock;
}

/**
 * `previous`, when given, is the configuration the proxy runs: a cluster or virtual host whose
 * config object the new snapshot shares with it (an endpoint update or a delta shares all it does
 * not replace: endpoints-update.ts, config-delta.ts) is taken over as compiled, unless something
 * it refers to was compiled anew. So an update costs what it changes, not the size of the mesh.
 */
export function compileSnapshot(snapshot: ProxySnapshot, deps: CompileDeps, previous?: RuntimeConfig): RuntimeConfig {
  if (snapshot.wire !== WIRE_FORMAT) throw new Error(`snapshot wire format ${snapshot.wire} is not ${WIRE_FORMAT}`);
  if (!Number.isInteger(snapshot.version)) throw new Error('snapshot has no integer version');

  const kept = reusableClusters(snapshot, previous);
  const clusters = new Map<string, CompiledCluster>();
  for (const c of snapshot.clusters) {
    if (clusters.has(c.name)) throw new Error(`cluster ${c.name} is defined twice`);
    clusters.set(c.name, kept.get(c.name) ?? compileCluster(c, snapshot.proxy, deps));
  }
  // Fallbacks once every cluster exists: a policy's route names another cluster.
  for (const c of snapshot.clusters) {
    if (!c.fallback || kept.has(c.name)) continue;
    const policy = c.fallback.policy;
    checkFallbackConfig(c.fallback, (name) => clusters.has(name));
    const route = c.fallback.route ? clusters.get(c.fallback.route.cluster) : undefined;
    (clusters.get(c.name) as { fallback?: CompiledFallback<CompiledCluster> }).fallback = compileFallback(c.fallback, route, cacheOf(deps.endpoints.clusters, policy));
  }
  for (const c of clusters.values()) if (!kept.has(c.config.name)) Object.freeze(c);

  const domains = new Map<string, CompiledVirtualHost>();
  const wildcards: { suffix: string; vhost: CompiledVirtualHost }[] = [];
  let catchAll: CompiledVirtualHost | undefined;
  const virtualHosts: CompiledVirtualHost[] = [];
  // By config object: a delta may add, remove or reorder virtual hosts around the ones it keeps.
  const compiledBefore = new Map<VirtualHostConfig, CompiledVirtualHost>();
  for (const v of previous?.virtualHosts ?? []) compiledBefore.set(v.config, v);
  // A plain loop, and long-lived closures made by helpers (cacheOf, renderOf): a closure made in
  // this function would keep its scope, and with it `previous` — every older version — alive.
  for (let i = 0; i < snapshot.outbound.virtualHosts.length; i++) {
    const vh = snapshot.outbound.virtualHosts[i]!;
    const before = compiledBefore.get(vh);
    const compiled = before && refersOnlyTo(before, clusters) ? before : compileVirtualHost(vh, clusters);
    virtualHosts.push(compiled);
    for (const raw of vh.domains) {
      const d = raw.toLowerCase();
      if (d === '*') catchAll ??= compiled;
      else if (d.startsWith('*.')) wildcards.push({ suffix: d.slice(1), vhost: compiled });
      else if (!domains.has(d)) domains.set(d, compiled);
    }
  }
  wildcards.sort((a, b) => b.suffix.length - a.suffix.length);

  // Everything compiled: now the snapshot's limits, detectors and caches take effect.
  deps.endpoints.clusters.commit(snapshot.clusters, deps.clock);
  deps.metrics.collect('clusters', renderOf(deps.endpoints.clusters));
  return Object.freeze({
    snapshot,
    version: snapshot.version,
    clusters,
    virtualHosts,
    domains,
    wildcards,
    catchAll,
    noRouteMetrics: deps.metrics.peer(sourcePeerLabels(snapshot.proxy, undefined, undefined)),
    resilience: deps.endpoints.clusters,
  });
}

function cacheOf(states: ClusterStates, policy: string): () => FallbackCache | undefined {
  return () => states.cache(policy);
}

function renderOf(states: ClusterStates): () => string {
  return () => states.renderMetrics();
}

/**
 * The clusters of `previous` the new snapshot has with the very same config object, and whose
 * fallback route (if any) leads only to such clusters: those need no compiling again.
 */
function reusableClusters(snapshot: ProxySnapshot, previous: RuntimeConfig | undefined): Map<string, CompiledCluster> {
  const kept = new Map<string, CompiledCluster>();
  if (!previous) return kept;
  for (const c of snapshot.clusters) {
    const before = previous.clusters.get(c.name);
    if (before?.config === c) kept.set(c.name, before);
  }
  // A kept cluster's compiled fallback points at its route's compiled cluster: if that one is
  // compiled anew, so is this one (repeated, as fallback routes can chain).
  for (let dropped = true; dropped; ) {
    dropped = false;
    for (const [name, c] of kept) {
      const route = c.config.fallback?.route?.cluster;
      if (route !== undefined && !kept.has(route)) {
        kept.delete(name);
        dropped = true;
      }
    }
  }
  return kept;
}

/** Whether every cluster a compiled virtual host's routes send or mirror to is the one in `clusters` now. */
function refersOnlyTo(vh: CompiledVirtualHost, clusters: ReadonlyMap<string, CompiledCluster>): boolean {
  for (const r of vh.routes) {
    for (const d of r.destinations) if (clusters.get(d.cluster.config.name) !== d.cluster) return false;
    for (const m of r.mirrors) if (clusters.get(m.cluster.config.name) !== m.cluster) return false;
  }
  return true;
}

function compileVirtualHost(vh: VirtualHostConfig, clusters: Map<string, CompiledCluster>): CompiledVirtualHost {
  const routes = vh.routes.map((r) => compileRouteEntry(r, clusters));
  return Object.freeze({ config: vh, routes });
}

function compileRouteEntry(r: RouteConfig, clusters: Map<string, CompiledCluster>): CompiledRouteEntry {
  const base = compileRoute(r);
  const a = r.action;
  const routeRequest = compileHeaderOps(a.headers?.request);
  const routeResponse = compileHeaderOps(a.headers?.response);
  const common = { ...base, cors: compileCors(a.cors), requestHeaders: routeRequest, responseHeaders: routeResponse, mirrors: [] as CompiledRouteEntry['mirrors'] };
  if (a.kind !== 'route') return Object.freeze({ ...common, destinations: [], totalWeight: 0 });
  const cluster = (name: string, what: string) => {
    const c = clusters.get(name);
    if (!c) throw new Error(`route ${r.name} ${what} cluster ${name}, which the snapshot does not define`);
    return c;
  };
  let total = 0;
  const destinations: CompiledDestination[] = [];
  for (const d of a.destinations) {
    if (!(d.weight >= 0)) throw new Error(`route ${r.name}: weight ${d.weight} is not a non-negative number`);
    total += d.weight;
    destinations.push({
      cluster: cluster(d.cluster, 'sends to'),
      upTo: total,
      requestHeaders: chain(compileHeaderOps(d.headers?.request), routeRequest),
      responseHeaders: chain(compileHeaderOps(d.headers?.response), routeResponse),
    });
  }
  if (destinations.length === 0) throw new Error(`route ${r.name} has no destination`);
  if (total === 0 && destinations.length > 1) throw new Error(`route ${r.name}: weights add up to 0`);
  return Object.freeze({
    ...common,
    destinations,
    totalWeight: total,
    retry: a.retries && a.retries.attempts > 0 ? compileRetryPolicy(a.retries) : undefined,
    rewritePath: compileRewrite(a.rewrite),
    mirrors: (a.mirrors ?? []).map((m) => ({ cluster: cluster(m.cluster, 'mirrors to'), percent: m.percent })),
  });
}

// Takes the proxy, not the snapshot: a compiled cluster outlives its snapshot when endpoint updates
// reuse it, and holding the snapshot would keep every old version alive.
function compileCluster(c: ClusterConfig, proxy: ProxyNode, deps: CompileDeps): CompiledCluster {
  // Checked before any pool is made for it: a truthy non-boolean would pick pools per request.
  if (c.useClientProtocol !== undefined && typeof c.useClientProtocol !== 'boolean')
    throw new Error(`cluster ${c.name}: useClientProtocol ${JSON.stringify(c.useClientProtocol)} is not true or false`);
  const byKey = new Map<string, UpstreamEndpoint>();
  // When each endpoint joined this cluster, kept across snapshots: slow start ramps from there.
  const joined = deps.endpoints.joinTimes(c.name, c.endpoints.map((e) => `${e.host}:${e.port}`), deps.clock.now());
  for (const e of c.endpoints) {
    const state = deps.endpoints.forEndpoint(c, e);
    if (byKey.has(state.key)) continue;
    const lb: LbEndpoint = {
      key: state.key,
      weight: e.weight,
      joinedAt: joined.get(state.key),
      get active() {
        return state.active;
      },
      set active(v: number) {
        state.active = v;
      },
    };
    let metrics: PeerLabels | undefined;
    byKey.set(state.key, {
      config: e,
      state,
      lb,
      // Rendered at the endpoint's first answer, not here: a proxy of a large mesh knows thousands
      // of endpoints and answers through few (rendering them all was a third of a compile).
      get metrics() {
        return (metrics ??= deps.metrics.peer(sourcePeerLabels(proxy, c, e, state.transport.mtls !== undefined)));
      },
    });
  }
  if (c.limits) checkCircuitLimitsConfig(c.limits);
  if (c.outlierDetection) checkOutlierConfig(c.outlierDetection);
  const policy = compileLbPolicy(c.lb);
  const all = [...byKey.values()].map((e) => e.lb);
  const balancerDeps = { random: deps.random, clock: deps.clock };
  const full = policy.build(all, balancerDeps);
  const state = deps.endpoints.clusters.forCluster(c.name);
  let built: { generation: number; balancer: Balancer } | undefined;
  // Frozen by compileSnapshot once its fallback is set.
  return {
    config: c,
    get balancer(): Balancer {
      const outlier = state.outlier;
      if (!outlier) return full;
      if (built?.generation !== state.generation) {
        // Ejected endpoints are left out before the balancer picks; all out: it answers UH.
        const usable = outlier.usable(all).endpoints;
        built = { generation: state.generation, balancer: usable === all ? full : policy.build(usable, balancerDeps) };
      }
      return built.balancer;
    },
    state,
    byKey,
    hash: 'consistentHash' in c.lb ? c.lb.consistentHash.key : undefined,
    unreachedMetrics: deps.metrics.peer(sourcePeerLabels(proxy, c, undefined)),
  };
}

/** The virtual host for a Host header value (`name` or `name:port`), as Envoy picks domains. */
export function findVirtualHost(rt: RuntimeConfig, authority: string): CompiledVirtualHost | undefined {
  const a = authority.toLowerCase();
  const exact = rt.domains.get(a);
  if (exact) return exact;
  const colon = a.lastIndexOf(':');
  const hostOnly = colon > 0 && !a.endsWith(']') ? a.slice(0, colon) : a;
  for (const w of rt.wildcards) if (hostOnly.endsWith(w.suffix)) return w.vhost;
  return rt.catchAll;
}
