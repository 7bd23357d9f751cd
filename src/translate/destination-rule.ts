// DestinationRule lookup and the balancing policy it sets for a (host, subset).

import type { DestinationRuleSpec, LoadBalancerSettings, Resource } from '../api/types.ts';
import { fqdn } from '../api/hosts.ts';
import { parseDuration } from '../core/duration.ts';
import type { LbConfig } from '../wire/snapshot.ts';

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
  let best: Resource<DestinationRuleSpec> | undefined;
  let bestScore = -1;
  for (const r of rules) {
    const h = fqdn(r.spec.host, r.metadata.namespace);
    let score: number;
    if (h === host) score = 1_000_000;
    else if (h === '*') score = 1;
    else if (h.startsWith('*.') && host.endsWith(h.slice(1))) score = h.length;
    else continue;
    score = score * 2 + (r.metadata.namespace === clientNamespace ? 1 : 0);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

/** A subset's loadBalancer replaces the rule's (field-by-field override at the trafficPolicy level). */
export function lbPolicy(dr: DestinationRuleSpec | undefined, subset: string | undefined): LbConfig {
  const fromSubset = subset ? dr?.subsets?.find((s) => s.name === subset)?.trafficPolicy?.loadBalancer : undefined;
  return lbConfig(fromSubset ?? dr?.trafficPolicy?.loadBalancer);
}

export function lbConfig(lb: LoadBalancerSettings | undefined): LbConfig {
  const ch = lb?.consistentHash;
  if (ch) {
    const key = ch.httpHeaderName
      ? { header: ch.httpHeaderName.toLowerCase() }
      : ch.httpCookie
        ? {
            cookie: {
              name: ch.httpCookie.name,
              ...(ch.httpCookie.path ? { path: ch.httpCookie.path } : {}),
              ...(ch.httpCookie.ttl ? { ttlSeconds: (parseDuration(ch.httpCookie.ttl) ?? 0) / 1000 } : {}),
            },
          }
        : ch.httpQueryParameterName
          ? { queryParameter: ch.httpQueryParameterName }
          : { sourceIp: true as const };
    const algorithm = ch.maglev
      ? { maglev: { tableSize: ch.maglev.tableSize ?? 65537 } }
      : { ringHash: { minimumRingSize: ch.ringHash?.minimumRingSize ?? ch.minimumRingSize ?? 1024 } };
    return { consistentHash: { key, algorithm } };
  }
  switch (lb?.simple) {
    case 'ROUND_ROBIN':
      return { simple: 'ROUND_ROBIN' };
    case 'RANDOM':
      return { simple: 'RANDOM' };
    case 'PASSTHROUGH':
      return { simple: 'PASSTHROUGH' };
    default:
      // Unset, UNSPECIFIED, LEAST_CONN (deprecated alias) and LEAST_REQUEST: Istio's default.
      return { simple: 'LEAST_REQUEST' };
  }
}
