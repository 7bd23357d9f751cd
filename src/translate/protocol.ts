// Protocol selection: how a proxy speaks to a cluster's endpoints and a sidecar to its app, as Istio chooses.

import type { ClusterTrafficPolicy } from './destination-rule.ts';
import type { Registry, ServiceInfo, ServicePortInfo } from '../registry/registry.ts';
import { labelsMatch } from '../registry/registry.ts';
import type { ClusterTlsConfig, ProxyNode, UpstreamProtocol } from '../wire/snapshot.ts';

/**
 * Istio's protocol of a service port, lowercased: `http`, `http2`, `grpc`, `grpc-web`, `tcp`, ...
 * A Kubernetes Service port is named by its `appProtocol` when set (`kubernetes.io/h2c` is HTTP/2,
 * `kubernetes.io/ws` HTTP), else by its name's prefix before the first `-` (`grpc-web` whole);
 * a ServiceEntry port by its `protocol`. Anything else is unsupported (Istio would sniff it).
 */
export function portProtocol(service: Pick<ServiceInfo, 'origin'>, sp: ServicePortInfo): string {
  // The registry keeps `appProtocol ?? protocol` for Kubernetes ports; the L4 protocols mean
  // "no appProtocol", so the port name decides.
  let name = sp.protocol;
  if (service.origin === 'Service') {
    const l4 = sp.protocol.toUpperCase();
    if (l4 === 'UDP') return 'udp';
    if (l4 === 'TCP' || l4 === 'SCTP') name = sp.name;
    else if (sp.protocol === 'kubernetes.io/h2c') return 'http2';
    else if (sp.protocol === 'kubernetes.io/ws') return 'http';
    else if (sp.protocol === 'kubernetes.io/wss') return 'https';
  }
  const lower = name.toLowerCase();
  if (lower.startsWith('grpc-web')) return 'grpc-web';
  const dash = lower.indexOf('-');
  const prefix = service.origin === 'Service' && dash >= 0 ? lower.slice(0, dash) : lower;
  return KNOWN.has(prefix) ? prefix : 'unsupported';
}

/** Istio's ClientTLSSettings as written (the api types keep `tls` untyped): the wire's fields, any mode. */
type ClientTLSSettings = Omit<Partial<ClusterTlsConfig>, 'mode'> & { mode?: string };

const KNOWN = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);

/** Istio's IsHTTP2: the protocols whose clusters speak HTTP/2 to the endpoints. */
export function isHttp2(protocol: string): boolean {
  return protocol === 'http2' || protocol === 'grpc' || protocol === 'grpc-web';
}

/**
 * The protocol of a cluster: HTTP/2 for HTTP/2 ports, else HTTP/1.1 — unless the cluster's
 * `connectionPool.http.h2UpgradePolicy` is `UPGRADE` (HTTP/2 whatever the port; Istio trusts the
 * user there). `DO_NOT_UPGRADE` and `DEFAULT` keep the port's protocol (the mesh default is not to
 * upgrade). Unknown ports are HTTP/1.1: Weft treats all traffic as HTTP.
 */
export function clusterProtocol(
  service: Pick<ServiceInfo, 'origin'> | undefined,
  sp: ServicePortInfo | undefined,
  policy: ClusterTrafficPolicy | undefined,
): UpstreamProtocol {
  const http = (policy?.connectionPool as { http?: { h2UpgradePolicy?: string } } | undefined)?.http;
  if (http?.h2UpgradePolicy === 'UPGRADE') return 'h2';
  return service && sp && isHttp2(portProtocol(service, sp)) ? 'h2' : 'http1';
}

/**
 * Does the cluster keep each request's own protocol (`connectionPool.http.useClientProtocol`)?
 * As in Istio it wins over the port's protocol, HTTP/2 and gRPC ports included (Istio replaces the
 * port's explicit HTTP/2 with Envoy's `use_downstream_protocol_config`), but not over
 * `h2UpgradePolicy: UPGRADE`, applied after it (validation refuses the pair anyway).
 */
export function useClientProtocol(policy: ClusterTrafficPolicy | undefined): boolean {
  const http = (policy?.connectionPool as { http?: { h2UpgradePolicy?: string; useClientProtocol?: unknown } } | undefined)?.http;
  return http?.useClientProtocol === true && http.h2UpgradePolicy !== 'UPGRADE';
}

/**
 * How a sidecar speaks to its own app: the protocol of the first port (file order) of the first
 * Service or ServiceEntry in its namespace whose selector picks the workload. `h2UpgradePolicy`
 * does not apply on this side (Istio upgrades outbound clusters only).
 */
export function inboundProtocol(registry: Registry, proxy: ProxyNode): UpstreamProtocol {
  for (const service of registry.services.values()) {
    if (!service.selector || service.namespace !== proxy.namespace || !labelsMatch(service.selector, proxy.labels)) continue;
    const sp = service.ports[0];
    if (sp) return isHttp2(portProtocol(service, sp)) ? 'h2' : 'http1';
  }
  return 'http1';
}

/**
 * The TLS a cluster originates: `SIMPLE` and `MUTUAL` with their settings; `ISTIO_MUTUAL` and
 * `DISABLE` as the mode alone (mTLS with the workload certificate to every endpoint; plaintext
 * even to sidecars). Unset is absent: auto mTLS.
 */
export function clusterTls(policy: ClusterTrafficPolicy | undefined): ClusterTlsConfig | undefined {
  const tls = policy?.tls as ClientTLSSettings | undefined;
  if (tls?.mode === 'ISTIO_MUTUAL' || tls?.mode === 'DISABLE') return { mode: tls.mode };
  if (tls?.mode !== 'SIMPLE' && tls?.mode !== 'MUTUAL') return undefined;
  const out: ClusterTlsConfig = { mode: tls.mode };
  // MUTUAL: the client certificate and key files the user gave, for a service outside the mesh.
  if (tls.mode === 'MUTUAL') {
    if (tls.clientCertificate) out.clientCertificate = tls.clientCertificate;
    if (tls.privateKey) out.privateKey = tls.privateKey;
  }
  if (tls.sni) out.sni = tls.sni;
  if (tls.caCertificates) out.caCertificates = tls.caCertificates;
  if (tls.subjectAltNames && tls.subjectAltNames.length > 0) out.subjectAltNames = [...tls.subjectAltNames];
  if (tls.insecureSkipVerify) out.insecureSkipVerify = true;
  return out;
}
