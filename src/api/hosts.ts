// Service host names: expanding short names to FQDNs and matching hosts that may carry a wildcard.
import { isIPAddress } from './net.ts';

/** The DNS suffix of the mesh, as in Istio's default install. */
export const CLUSTER_DOMAIN = 'cluster.local';

/**
 * The fully qualified name a host in a rule refers to, the way Istio resolves it: a short name
 * (no dot) is relative to the rule's namespace, so `reviews` in `default` is
 * `reviews.default.svc.cluster.local`. Anything with a dot is already taken as fully qualified —
 * `reviews.default` stays as written, exactly as in Istio — and so are `*` and IP addresses.
 */
export function fqdn(host: string, namespace: string): string {
  if (host === '' || host === '*' || host.includes('.') || isIPAddress(host)) return host;
  return `${host}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

/** The FQDN of a Kubernetes Service. */
export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.svc.${CLUSTER_DOMAIN}`;
}

export function isWildcardHost(host: string): boolean {
  return host.startsWith('*');
}

/**
 * True when the concrete or wildcard host `a` is covered by host pattern `b`
 * (`a.foo.com` by `*.foo.com`, `*.a.foo.com` by `*.foo.com`, `x` by `*`). Comparison ignores case.
 */
export function hostCoveredBy(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y || y === '*') return true;
  if (!y.startsWith('*')) return false;
  const suffix = y.slice(1); // ".foo.com", or "foo.com" for a partial wildcard like "*foo.com"
  if (x.startsWith('*')) return x.slice(1).endsWith(suffix);
  return x.endsWith(suffix) && x.length > suffix.length;
}

/** True when two host patterns can match a common name (either covers the other). */
export function hostsOverlap(a: string, b: string): boolean {
  return hostCoveredBy(a, b) || hostCoveredBy(b, a);
}
