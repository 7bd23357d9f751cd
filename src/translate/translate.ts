// Translation: (resources, registry, proxy) → ProxySnapshot. Pure, so it is tested with golden cases.

import type {
  Destination,
  DestinationRuleSpec,
  HTTPMatchRequest,
  HTTPRoute,
  Resource,
  StringMatch,
  VirtualServiceSpec,
} from '../api/types.ts';
import { fqdn } from '../api/hosts.ts';
import { parseDuration } from '../core/duration.ts';
import {
  type Registry,
  type ServiceInfo,
  type ServicePortInfo,
  type EndpointInfo,
  endpointPort,
  endpointRecords,
  labelsMatch,
  sameRecords,
} from '../registry/registry.ts';
import {
  WIRE_FORMAT,
  type ClusterConfig,
  type EndpointConfig,
  type HeaderMatchConfig,
  type MatchConfig,
  type ProxyNode,
  type ProxySnapshot,
  type RouteConfig,
  type VirtualHostConfig,
} from '../wire/snapshot.ts';
import { domainsFor } from './domains.ts';
import { boundGateways, gatewayServesHost, matchGatewaysApply, virtualServiceBinding, type BoundGateways } from './gateways.ts';
import { spiffe } from './identity.ts';
import { mergeMatches } from './delegate.ts';
import { corsConfig, faultConfig, headerOps, mirrorTargets, redirectConfig, retryPolicy, rewriteConfig } from './route-action.ts';
import { clusterTrafficPolicy, destinationRuleIndex, lbPolicy } from './destination-rule.ts';
import { clusterProtocol, clusterTls, inboundProtocol, useClientProtocol } from './protocol.ts';
import { inboundAuthorization, inboundMtls, peerMtlsDisabled } from './security.ts';
import { clusterResilience, fallbackIndex } from './resilience.ts';
import { streamingTimeouts } from '../api/annotations.ts';

export interface TranslateInput {
  resources: readonly Resource[];
  registry: Registry;
  proxy: ProxyNode;
  /** Sidecars: where the app behind the proxy listens. */
  inbound?: { appHost: string; appPort: number };
  version: number;
  /**
   * Clusters made by earlier translations for proxies of this proxy's namespace, by name, from the
   * same resources but for routing and endpoints (VirtualServices, Gateways, WorkloadEntries — no
   * cluster depends on the first two, and a cluster is reused only while its service has the very
   * same endpoint records): reused as they are, and the ones made anew are added. The control
   * plane keeps it across changes, so that a routing change translates only routes.
   */
  clusterCache?: Map<string, CachedCluster>;
}

export interface CachedCluster {
  config: ClusterConfig;
  /** The endpoint records of its service it was made from (registry.ts endpointRecords). */
  records: readonly EndpointInfo[];
}

/**
 * The kinds a change to which leaves every cluster as it was (routing) or changes a cluster only
 * through its service's endpoint records (endpoints): translate's clusterCache stays good.
 */
export const CLUSTER_CACHE_KINDS: ReadonlySet<string> = new Set(['VirtualService', 'Gateway', 'WorkloadEntry']);

export function translate(input: TranslateInput): ProxySnapshot {
  return withInbound(input, translateOutbound(input));
}

/** What a proxy sends into the mesh: its virtual hosts and the clusters they use. */
export interface OutboundPart {
  virtualHosts: VirtualHostConfig[];
  clusters: ClusterConfig[];
}

/**
 * Whether any VirtualService has a match with `sourceLabels`: only then do a sidecar's labels
 * shape its routes (outboundView).
 */
export function routesUseSourceLabels(resources: readonly Resource[]): boolean {
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    for (const http of (r.spec as VirtualServiceSpec).http ?? []) if (http.match?.some((m) => m.sourceLabels)) return true;
  }
  return false;
}

/**
 * What of a proxy its outbound part depends on, as a key: proxies with the same key get the very
 * same virtual hosts and clusters from the same resources, so the control plane translates them
 * once. Everything translateOutbound reads of the proxy is here — its kind and namespace, and its
 * labels where they count (a Gateway's selector at the edge; `sourceLabels` anywhere).
 */
export function outboundView(proxy: ProxyNode, useSourceLabels: boolean): string {
  const labels = proxy.kind === 'edge' || useSourceLabels ? proxy.labels : {};
  return JSON.stringify([proxy.kind, proxy.namespace, Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))]);
}

/** The snapshot of a proxy whose outbound part is `outbound`: its own identity and inbound side added. */
export function withInbound(input: Omit<TranslateInput, 'clusterCache'>, outbound: OutboundPart): ProxySnapshot {
  const { resources, registry, proxy } = input;
  return {
    wire: WIRE_FORMAT,
    version: input.version,
    proxy,
    inbound: input.inbound && {
      ...input.inbound,
      protocol: inboundProtocol(registry, proxy),
      mtls: inboundMtls(resources, proxy, input.inbound.appPort),
      ...inboundAuthorization(resources, proxy),
    },
    outbound: { virtualHosts: outbound.virtualHosts },
    clusters: outbound.clusters,
  };
}

/** The outbound part alone: the same for every proxy of one outboundView. */
export function translateOutbound(input: Pick<TranslateInput, 'resources' | 'registry' | 'proxy' | 'clusterCache'>): OutboundPart {
  const { resources, registry, proxy, clusterCache } = input;
  const bound = boundGateways(resources, proxy);
  // Gateway-bound rules first, so at the edge they win over mesh rules for the same host.
  const binding = new Map<Resource<VirtualServiceSpec>, 'mesh' | 'gateway'>();
  for (const r of resources) {
    if (r.kind !== 'VirtualService') continue;
    const b = virtualServiceBinding(r as Resource<VirtualServiceSpec>, proxy, bound);
    if (b) binding.set(r as Resource<VirtualServiceSpec>, b);
  }
  const virtualServices = [...binding.keys()].sort((a, b) => (binding.get(a) === 'gateway' ? 0 : 1) - (binding.get(b) === 'gateway' ? 0 : 1));
  const clusters = new Map<string, ClusterConfig>();
  const endpointCtx = endpointContext(resources, registry, proxy.namespace);
  const { ruleFor } = endpointCtx;
  const fallbackFor = fallbackIndex(resources);

  /** The cluster for (host, port, subset), created on first use. Unknown hosts get no endpoints. */
  const clusterFor = (host: string, port: number, subset: string | undefined): string => {
    const name = `outbound|${port}|${subset ?? ''}|${host}`;
    if (clusters.has(name)) return name;
    const made = clusterCache?.get(name);
    // Its fallback route's cluster was made with it (and is made again if its endpoints changed).
    const routeMade = made?.config.fallback?.route && clusterCache!.get(made.config.fallback.route.cluster);
    if (made && sameRecords(made.records, endpointRecords(registry, host)) && (routeMade || !made.config.fallback?.route)) {
      clusters.set(name, made.config);
      if (routeMade) clusterFor(routeMade.config.service.host, routeMade.config.service.port, routeMade.config.subset);
      return name;
    }
    const service = registry.services.get(host);
    const dr = ruleFor(host);
    const policy = clusterTrafficPolicy(dr?.spec, subset, port);
    const tls = clusterTls(policy);
    const protocol = clusterProtocol(service, service?.ports.find((p) => p.port === port), policy);
    const endpoints = clusterEndpoints(endpointCtx, host, port, subset);
    clusters.set(name, {
      name,
      service: {
        host,
        name: service?.name ?? host.split('.')[0],
        namespace: service?.namespace ?? proxy.namespace,
        port,
      },
      subset,
      lb: lbPolicy(dr?.spec, subset, port),
      protocol,
      ...(useClientProtocol(policy) ? { useClientProtocol: true } : {}),
      ...(tls ? { tls } : {}),
      ...clusterResilience(policy, protocol),
      endpoints,
    });
    // Set after the cluster is known, so a fallback route back to this cluster cannot recurse.
    const fallback = fallbackFor(host, subset);
    if (fallback) {
      const { route, ...rest } = fallback;
      const c = clusters.get(name)!;
      c.fallback = rest;
      if (route) {
        const routePort = route.host === host ? port : (registry.services.get(route.host)?.ports.length === 1 ? registry.services.get(route.host)!.ports[0].port : port);
        c.fallback = { ...rest, route: { cluster: clusterFor(route.host, routePort, route.subset) } };
      }
    }
    clusterCache?.set(name, { config: clusters.get(name)!, records: endpointRecords(registry, host) });
    return name;
  };

  const isConsistentHash = (name: string) => {
    const c = clusters.get(name);
    return c !== undefined && 'consistentHash' in c.lb;
  };

  const delegates = new Map(
    resources
      .filter((r): r is Resource<VirtualServiceSpec> => r.kind === 'VirtualService' && ((r.spec as VirtualServiceSpec).hosts ?? []).length === 0)
      .map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]),
  );
  const ctx: RouteContext = { registry, proxy, bound, delegates, clusterFor, isConsistentHash };

  // The first VirtualService (in file order) that claims a host owns it, as in Istio.
  const vsByHost = new Map<string, Resource<VirtualServiceSpec>>();
  for (const vs of virtualServices)
    for (const h of vs.spec.hosts ?? []) {
      // At a gateway, only the hosts its servers accept.
      if (binding.get(vs) === 'gateway' && !gatewayServesHost(h, vs.metadata.namespace, bound)) continue;
      const host = fqdn(h, vs.metadata.namespace);
      if (!vsByHost.has(host)) vsByHost.set(host, vs);
    }

  const virtualHosts: VirtualHostConfig[] = [];
  const covered = new Set<string>();
  for (const service of registry.services.values()) {
    for (const sp of service.ports) {
      const vs = vsByHost.get(service.host);
      const routes = vs
        ? routesFrom(vs, service.host, sp, ctx)
        : [defaultRoute(service, sp, clusterFor(service.host, sp.port, undefined), isConsistentHash)];
      virtualHosts.push({
        name: `${service.host}:${sp.port}`,
        domains: domainsFor(service, sp, proxy.namespace),
        routes,
      });
    }
    covered.add(service.host);
  }
  // VirtualService hosts with no service behind them still get their routes (Istio listens on 80).
  for (const [host, vs] of vsByHost) {
    if (covered.has(host)) continue;
    const sp: ServicePortInfo = { name: 'http', port: 80, protocol: 'HTTP' };
    virtualHosts.push({
      name: `${host}:80`,
      domains: domainsFor({ host, name: host.split('.')[0], namespace: vs.metadata.namespace, ports: [sp] }, sp, proxy.namespace),
      routes: routesFrom(vs, host, sp, ctx),
    });
  }

  return { virtualHosts, clusters: [...clusters.values()] };
}

export { spiffe } from './identity.ts';

/** What working out a cluster's endpoints needs besides the cluster: shared by full translation and endpoint-only pushes. */
export interface EndpointContext {
  registry: Registry;
  /** The DestinationRule for a host, as the proxy's namespace sees it (its subsets pick endpoints). */
  ruleFor: (host: string) => Resource<DestinationRuleSpec> | undefined;
  /** Whether a sidecar's PeerAuthentication is DISABLE (auto mTLS then sends it plaintext). */
  mtlsDisabled: (namespace: string, labels: Readonly<Record<string, string>>) => boolean;
}

export function endpointContext(resources: readonly Resource[], registry: Registry, proxyNamespace: string): EndpointContext {
  const destinationRules = resources.filter((r): r is Resource<DestinationRuleSpec> => r.kind === 'DestinationRule');
  return { registry, ruleFor: destinationRuleIndex(destinationRules, proxyNamespace), mtlsDisabled: peerMtlsDisabled(resources) };
}

/**
 * The endpoints of the cluster for (host, port, subset): the service's endpoints with the
 * subset's labels, at the port the service port targets. None for an unknown host, port or subset.
 */
export function clusterEndpoints(ctx: EndpointContext, host: string, port: number, subset: string | undefined): EndpointConfig[] {
  const service = ctx.registry.services.get(host);
  const servicePort = service?.ports.find((p) => p.port === port);
  const subsetSpec = subset ? ctx.ruleFor(host)?.spec.subsets?.find((s) => s.name === subset) : undefined;
  if (!service || !servicePort || (subset && !subsetSpec)) return [];
  return ctx.registry
    .endpoints(service)
    .filter((e) => !subsetSpec?.labels || labelsMatch(subsetSpec.labels, e.labels))
    .map((e) => ({
      host: e.host,
      port: endpointPort(e, servicePort),
      weight: e.weight,
      workload: e.workload,
      namespace: e.namespace,
      app: e.labels.app ?? 'unknown',
      version: e.labels.version ?? 'unknown',
      identity: spiffe(e.namespace, e.serviceAccount),
      sidecar: e.sidecar,
      ...(e.sidecar && ctx.mtlsDisabled(e.namespace, e.labels) ? { mtls: false as const } : {}),
    }));
}

function defaultRoute(
  service: ServiceInfo,
  sp: ServicePortInfo,
  cluster: string,
  isConsistentHash: (cluster: string) => boolean,
): RouteConfig {
  const retries = retryPolicy({}, isConsistentHash(cluster));
  return {
    name: `default/${service.host}:${sp.port}`,
    match: [],
    action: { kind: 'route', destinations: [{ cluster, weight: 1 }], ...(retries ? { retries } : {}) },
  };
}

/** What building one proxy's routes needs, besides the route itself. */
interface RouteContext {
  registry: Registry;
  /** VirtualServices without hosts, by `namespace/name`: the targets of `delegate`. */
  delegates: ReadonlyMap<string, Resource<VirtualServiceSpec>>;
  proxy: ProxyNode;
  bound: BoundGateways;
  clusterFor: (host: string, port: number, subset: string | undefined) => string;
  isConsistentHash: (cluster: string) => boolean;
}

function routesFrom(vs: Resource<VirtualServiceSpec>, vhostHost: string, sp: ServicePortInfo, ctx: RouteContext): RouteConfig[] {
  const out: RouteConfig[] = [];
  (vs.spec.http ?? []).forEach((http, i) => {
    const name = `${vs.metadata.namespace}/${vs.metadata.name}/${http.name ?? i}`;
    if (!http.delegate) {
      const route = routeFrom(http, http.match, name, vs.metadata.namespace, vhostHost, sp, ctx, vs.metadata.annotations);
      if (route) out.push(route);
      return;
    }
    // The delegate's routes take this route's place, their matches merged into its matches;
    // their destinations resolve in the delegate's namespace.
    const ns = http.delegate.namespace ?? vs.metadata.namespace;
    const child = ctx.delegates.get(`${ns}/${http.delegate.name}`);
    (child?.spec.http ?? []).forEach((ch, j) => {
      const merged = mergeMatches(http.match, ch.match);
      if (merged.length === 0) return;
      const route = routeFrom(ch, merged, `${name}/${ns}/${http.delegate!.name}/${ch.name ?? j}`, ns, vhostHost, sp, ctx, child!.metadata.annotations);
      if (route) out.push(route);
    });
  });
  return out;
}

function routeFrom(
  http: HTTPRoute,
  matches: HTTPMatchRequest[] | undefined,
  name: string,
  namespace: string,
  vhostHost: string,
  sp: ServicePortInfo,
  ctx: RouteContext,
  /** The annotations of the VirtualService that defines the route (Weft's streaming timeouts). */
  annotations: Readonly<Record<string, string>> = {},
): RouteConfig | undefined {
  // sourceLabels / sourceNamespace / gateways pick which proxies get a match, per proxy, not per request.
  let match: MatchConfig[] = [];
  if (matches && matches.length > 0) {
    const forThisProxy = matches.filter((m) => matchAppliesTo(m, ctx.proxy) && matchGatewaysApply(m, namespace, ctx.bound));
    if (forThisProxy.length === 0) return undefined; // no match item applies to this proxy: the route is not here
    match = forThisProxy.map(matchConfig);
  }
  const action = routeAction(http, namespace, vhostHost, sp, ctx);
  if (action?.kind === 'route') Object.assign(action, streamingTimeouts(annotations, http.name));
  return action ? { name, match, action } : undefined;
}

function matchAppliesTo(m: HTTPMatchRequest, proxy: ProxyNode): boolean {
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== proxy.namespace) return false;
  return true;
}

function routeAction(
  http: HTTPRoute,
  vsNamespace: string,
  vhostHost: string,
  sp: ServicePortInfo,
  { registry, clusterFor, isConsistentHash }: RouteContext,
): RouteConfig['action'] | undefined {
  const headers = headerOps(http.headers);
  const cors = corsConfig(http);
  const common = { ...(headers ? { headers } : {}), ...(cors ? { cors } : {}) };
  if (http.redirect) return { kind: 'redirect', ...redirectConfig(http)!, ...common };
  const fault = faultConfig(http);
  if (http.directResponse) {
    const body = http.directResponse.body;
    return {
      kind: 'directResponse',
      status: http.directResponse.status,
      body: body?.string ?? (body?.bytes !== undefined ? Buffer.from(body.bytes, 'base64').toString('utf8') : undefined),
      ...common,
      ...(fault ? { fault } : {}),
    };
  }
  if (!http.route) return undefined; // delegate: not implemented yet (analyze warns)
  const clusterOf = (d: Destination) => {
    const host = fqdn(d.host, vsNamespace);
    const service = registry.services.get(host);
    const port = d.port?.number ?? (host === vhostHost ? sp.port : service?.ports.length === 1 ? service.ports[0].port : sp.port);
    return clusterFor(host, port, d.subset);
  };
  const destinations = http.route.map((d) => {
    // Istio: a lone destination gets all traffic whatever its weight; weights are relative.
    const weight = http.route!.length === 1 ? 1 : (d.weight ?? 0);
    const h = headerOps(d.headers);
    return { cluster: clusterOf(d.destination), weight, ...(h ? { headers: h } : {}) };
  });
  const timeoutMs = http.timeout ? parseDuration(http.timeout) : undefined;
  const retries = retryPolicy(http, isConsistentHash(destinations[0].cluster));
  const mirrors = mirrorTargets(http).map((m) => ({ cluster: clusterOf(m.destination), percent: m.percent }));
  const rewrite = rewriteConfig(http);
  return {
    kind: 'route',
    destinations,
    ...(timeoutMs ? { timeoutMs } : {}),
    ...(retries ? { retries } : {}),
    ...(fault ? { fault } : {}),
    ...(mirrors.length ? { mirrors } : {}),
    ...(rewrite ? { rewrite } : {}),
    ...common,
  };
}

function matchConfig(m: HTTPMatchRequest): MatchConfig {
  const out: MatchConfig = {};
  if (m.name) out.name = m.name;
  if (m.uri) out.uri = m.uri;
  if (m.scheme) out.scheme = m.scheme;
  if (m.method) out.method = m.method;
  if (m.authority) out.authority = m.authority;
  if (m.headers) out.headers = headerMatches(m.headers);
  if (m.withoutHeaders) out.withoutHeaders = headerMatches(m.withoutHeaders);
  if (m.queryParams) out.queryParams = headerMatches(m.queryParams, false);
  if (m.ignoreUriCase) out.ignoreUriCase = true;
  if (m.port) out.port = m.port;
  return out;
}

function headerMatches(h: Record<string, StringMatch | Record<string, never>>, lowercase = true): HeaderMatchConfig[] {
  return Object.entries(h).map(([name, sm]) => {
    const key = lowercase ? name.toLowerCase() : name;
    return Object.keys(sm).length === 0 ? { name: key } : { name: key, match: sm as StringMatch };
  });
}
