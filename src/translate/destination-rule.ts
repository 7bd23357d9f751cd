// DestinationRule lookup, the traffic policy it sets for a (host, subset, port), and the balancing policy from it.

import type { ConsistentHashLB, DestinationRuleSpec, LoadBalancerSettings, Resource, TrafficPolicy } from '../api/types.ts';
import { fqdn } from '../api/hosts.ts';
import { parseDuration } from '../core/duration.ts';
import type { ConsistentHashConfig, HashCookieConfig, LbConfig, WarmupConfig } from '../wire/snapshot.ts';

/**
 * The rule for a host: an exact host beats a wildcard, a longer wildcard beats a shorter one,
 * and among equals the client's own namespace wins, then file order (Istio's precedence, simplified
 * to what local mode can express).
 */
export function findDestinationRule(
  rules: readonly Resource<DestinationRuleSpec>[],
  host: string,
  clientNamespace: string,
): Resource<DestinationRuleSpec> | undefined {
  return destinationRuleIndex(rules, clientNamespace)(host);
}

/**
 * The same choice as findDestinationRule, with each rule's host resolved once: exact hosts in a
 * map, wildcards in a short list. Translation asks once per cluster, so with a thousand rules a
 * scan per question would dominate it.
 */
export function destinationRuleIndex(
  rules: readonly Resource<DestinationRuleSpec>[],
  clientNamespace: string,
): (host: string) => Resource<DestinationRuleSpec> | undefined {
  const exact = new Map<string, Resource<DestinationRuleSpec>>();
  const wildcards: Array<{ suffix: string; length: number; rule: Resource<DestinationRuleSpec> }> = [];
  const better = (a: Resource<DestinationRuleSpec> | undefined, b: Resource<DestinationRuleSpec>) =>
    // The client's own namespace wins a tie; otherwise the first in file order stays.
    !a || (b.metadata.namespace === clientNamespace && a.metadata.namespace !== clientNamespace);
  for (const r of rules) {
    const h = fqdn(r.spec.host, r.metadata.namespace);
    if (h === '*') wildcards.push({ suffix: '', length: 1, rule: r });
    else if (h.startsWith('*.')) wildcards.push({ suffix: h.slice(1), length: h.length, rule: r });
    else if (better(exact.get(h), r)) exact.set(h, r);
  }
  return (host) => {
    const hit = exact.get(host);
    if (hit) return hit;
    let best: (typeof wildcards)[number] | undefined;
    for (const w of wildcards) {
      if (!host.endsWith(w.suffix)) continue;
      if (!best || w.length > best.length || (w.length === best.length && better(best.rule, w.rule))) best = w;
    }
    return best?.rule;
  };
}

/**
 * A traffic policy as it applies to one cluster: port-level settings already resolved, so it has
 * none. (`retryBudget` is in Istio's schema but not yet in api/types.ts.)
 */
export type ClusterTrafficPolicy = Omit<TrafficPolicy, 'portLevelSettings'> & { retryBudget?: unknown };

/** The fields a `portLevelSettings` entry can set; it replaces all four for its port. */
const PORT_LEVEL_FIELDS = ['connectionPool', 'outlierDetection', 'loadBalancer', 'tls'] as const;
/** Fields a subset overrides only when it sets them, and a port-level entry never touches. */
const WHOLE_SERVICE_FIELDS = ['tunnel', 'proxyProtocol', 'retryBudget'] as const;

/**
 * A policy resolved for one port (Istio's GetPortLevelTrafficPolicy). The first
 * `portLevelSettings` entry whose `port.number` is the port replaces the policy wholesale: its
 * absent fields take their defaults rather than the policy's (Istio's documented rule, "settings
 * at the destination level will not be inherited when overridden by port-level settings"), and,
 * as in Istio, the whole-service fields (tunnel, proxyProtocol, retryBudget) go with them.
 * `portLevel` says whether an entry matched.
 */
export function portTrafficPolicy(
  policy: TrafficPolicy | undefined,
  port: number | undefined,
): { policy: ClusterTrafficPolicy | undefined; portLevel: boolean } {
  if (!policy) return { policy: undefined, portLevel: false };
  const entry = port === undefined ? undefined : policy.portLevelSettings?.find((p) => p?.port?.number === port);
  const source: ClusterTrafficPolicy = entry ?? policy;
  const out: ClusterTrafficPolicy = {};
  for (const f of PORT_LEVEL_FIELDS) if (source[f] !== undefined) out[f] = source[f] as never;
  if (!entry) for (const f of WHOLE_SERVICE_FIELDS) if (source[f] !== undefined) out[f] = source[f] as never;
  return { policy: out, portLevel: entry !== undefined };
}

/**
 * The traffic policy for a cluster (Istio's MergeSubsetTrafficPolicy): the rule's policy for the
 * port, then the subset's policy for the port over it, field by field — each of loadBalancer,
 * connectionPool, outlierDetection, tls, tunnel, proxyProtocol and retryBudget the subset sets
 * replaces the rule's as a whole (fields are not merged inside, so a subset's loadBalancer with
 * only `simple` drops the rule's `warmup`). When the subset has a port-level entry for the port,
 * that entry replaces all four port-level fields, set or not. Undefined when neither sets one.
 */
export function mergeTrafficPolicy(
  rule: TrafficPolicy | undefined,
  subset: TrafficPolicy | undefined,
  port?: number,
): ClusterTrafficPolicy | undefined {
  const base = portTrafficPolicy(rule, port).policy;
  if (!subset) return base;
  const { policy: over, portLevel } = portTrafficPolicy(subset, port);
  if (!base) return over;
  const merged: ClusterTrafficPolicy = { ...base };
  for (const f of PORT_LEVEL_FIELDS) {
    if (over![f] !== undefined) merged[f] = over![f] as never;
    else if (portLevel) delete merged[f];
  }
  for (const f of WHOLE_SERVICE_FIELDS) if (over![f] !== undefined) merged[f] = over![f] as never;
  return merged;
}

/** The merged policy for the cluster of (rule, subset, port); an unknown subset adds nothing. */
export function clusterTrafficPolicy(
  dr: DestinationRuleSpec | undefined,
  subset: string | undefined,
  port?: number,
): ClusterTrafficPolicy | undefined {
  const fromSubset = subset ? dr?.subsets?.find((s) => s.name === subset)?.trafficPolicy : undefined;
  return mergeTrafficPolicy(dr?.trafficPolicy, fromSubset, port);
}

/** The balancing policy of the cluster for (rule, subset, port): see clusterTrafficPolicy. */
export function lbPolicy(dr: DestinationRuleSpec | undefined, subset: string | undefined, port?: number): LbConfig {
  return lbConfig(clusterTrafficPolicy(dr, subset, port)?.loadBalancer);
}

/**
 * Istio's LoadBalancerSettings as the proxy's LbConfig. `consistentHash` wins over `simple`
 * (validation allows only one); unset, UNSPECIFIED and LEAST_CONN mean LEAST_REQUEST. Warmup is
 * carried only for ROUND_ROBIN and LEAST_REQUEST, the policies Istio configures slow start on.
 */
export function lbConfig(lb: LoadBalancerSettings | undefined): LbConfig {
  if (lb?.consistentHash) return { consistentHash: consistentHash(lb.consistentHash) };
  switch (lb?.simple) {
    case 'RANDOM':
      return { simple: 'RANDOM' };
    case 'PASSTHROUGH':
      return { simple: 'PASSTHROUGH' };
    case 'ROUND_ROBIN': {
      const warmup = warmupConfig(lb);
      return warmup ? { simple: 'ROUND_ROBIN', warmup } : { simple: 'ROUND_ROBIN' };
    }
    default: {
      // Unset, UNSPECIFIED, LEAST_CONN (deprecated alias) and LEAST_REQUEST: Istio's default.
      const warmup = lb && warmupConfig(lb);
      return warmup ? { simple: 'LEAST_REQUEST', warmup } : { simple: 'LEAST_REQUEST' };
    }
  }
}

/**
 * `warmup` when set (it wins over the deprecated `warmupDurationSecs`, even without a duration,
 * as in Istio), else `warmupDurationSecs` with Envoy's defaults. A window that is absent or not
 * above zero disables slow start, as Envoy treats a zero window.
 */
function warmupConfig(lb: LoadBalancerSettings): WarmupConfig | undefined {
  const duration = lb.warmup ? lb.warmup.duration : lb.warmupDurationSecs;
  const durationMs = duration === undefined ? undefined : parseDuration(duration);
  if (durationMs === undefined || !(durationMs > 0)) return undefined;
  return { durationMs, minimumPercent: lb.warmup?.minimumPercent ?? 10, aggression: lb.warmup?.aggression ?? 1 };
}

/** The api types do not list cookie attributes yet; the schema accepts them. */
type HttpCookie = NonNullable<ConsistentHashLB['httpCookie']> & { attributes?: Array<{ name: string; value?: string }> };

function consistentHash(ch: ConsistentHashLB): ConsistentHashConfig {
  // Istio sets an Envoy ring size only when it is not 0; Envoy's default is 1024.
  const algorithm = ch.maglev
    ? { maglev: { tableSize: ch.maglev.tableSize || 65537 } }
    : { ringHash: { minimumRingSize: (ch.ringHash ? ch.ringHash.minimumRingSize : ch.minimumRingSize) || 1024 } };
  // Header names are case-insensitive (Envoy looks them up lowercased); query parameter names are not.
  const key: ConsistentHashConfig['key'] = ch.httpHeaderName
    ? { header: ch.httpHeaderName.toLowerCase() }
    : ch.httpCookie
      ? { cookie: hashCookie(ch.httpCookie) }
      : ch.httpQueryParameterName
        ? { queryParameter: ch.httpQueryParameterName }
        : // useSourceIp, and (until the wire can say "no key") a consistentHash that names no key.
          { sourceIp: true };
  return { key, algorithm };
}

/**
 * Envoy keeps a cookie's ttl in whole seconds (the Duration's `seconds`), so 1.5s is 1 s and
 * 500ms is 0 s — a session cookie. A ttl that is present, even 0s, means "generate the cookie
 * when the request has none"; without one a request that lacks the cookie is not hashed.
 */
function hashCookie(c: HttpCookie): HashCookieConfig {
  const out: HashCookieConfig = { name: c.name };
  if (c.path) out.path = c.path;
  if (c.ttl !== undefined) out.ttlSeconds = Math.max(0, Math.trunc((parseDuration(c.ttl) ?? 0) / 1000));
  if (c.attributes && c.attributes.length > 0) {
    out.attributes = c.attributes.map((a) => (a.value ? { name: a.name, value: a.value } : { name: a.name }));
  }
  return out;
}
