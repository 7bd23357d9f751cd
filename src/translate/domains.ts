// Domains: the Host header values that reach a service port, as Istio's sidecar virtual hosts list them.

import type { ServiceInfo, ServicePortInfo } from '../registry/registry.ts';
import { CLUSTER_DOMAIN } from '../api/hosts.ts';

/**
 * For a Kubernetes service `reviews.default.svc.cluster.local` seen from namespace `default`:
 * `reviews`, `reviews.default`, `reviews.default.svc`, the FQDN, each also with `:port`.
 * The short name only resolves inside the service's own namespace, as with Kubernetes DNS.
 * The port-less forms go to the service's default port: 80 when it has one, else its first port,
 * so `curl http://reviews/` and `Host: reviews` work whichever port the service declares.
 */
export function domainsFor(
  service: Pick<ServiceInfo, 'host' | 'name' | 'namespace' | 'ports'>,
  sp: ServicePortInfo,
  clientNamespace: string,
): string[] {
  const names: string[] = [];
  const suffix = `.${service.namespace}.svc.${CLUSTER_DOMAIN}`;
  if (service.host.endsWith(suffix)) {
    const short = service.host.slice(0, -suffix.length);
    if (service.namespace === clientNamespace) names.push(short);
    names.push(`${short}.${service.namespace}`, `${short}.${service.namespace}.svc`, service.host);
  } else {
    names.push(service.host);
  }
  const defaultPort = service.ports.some((p) => p.port === 80) ? 80 : service.ports[0]?.port;
  const out: string[] = [];
  for (const n of names) {
    if (sp.port === defaultPort) out.push(n);
    out.push(`${n}:${sp.port}`);
  }
  return out;
}
