// Peer labels: who is talking to whom, as Istio's standard metrics name it.
//
// Principals come from certificates only: on the server side `source_principal` is the SPIFFE ID
// of the verified client certificate, and the caller's workload, app and version (from the
// `x-weft-peer` header, Istio's metadata exchange) are believed only over mTLS and only when the
// header names that same identity. A plaintext caller is `unknown` in every source label and the
// connection is `connection_security_policy="none"`. On the client side the policy is `unknown`
// (as Istio reports it there) and `destination_principal` is the endpoint's identity only when
// the connection is mTLS, where that identity was checked against the endpoint's certificate.

import type { ClusterConfig, EndpointConfig, ProxyNode } from '../../wire/snapshot.ts';
import type { PeerLabelValues } from './metrics.ts';
import { parseSpiffeId } from '../../security/spiffe.ts';

/** Metadata a client sidecar passes to the server sidecar (Istio's peer metadata exchange, simplified). */
export const PEER_HEADER = 'x-weft-peer';

export interface PeerInfo {
  workload: string;
  namespace: string;
  app: string;
  version: string;
  identity: string;
}

const encoded = new WeakMap<ProxyNode, string>();

/** The header value for this proxy; worked out once per snapshot's node, not per request. */
export function encodePeer(p: ProxyNode): string {
  let v = encoded.get(p);
  if (v === undefined) {
    v = encodePeerNow(p);
    encoded.set(p, v);
  }
  return v;
}

function encodePeerNow(p: ProxyNode): string {
  return [p.workload, p.namespace, p.app, p.version, p.identity].map(encodeURIComponent).join(';');
}

export function decodePeer(v: string | undefined): PeerInfo | undefined {
  if (!v) return undefined;
  const parts = v.split(';').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return 'unknown';
    }
  });
  if (parts.length !== 5) return undefined;
  const [workload, namespace, app, version, identity] = parts;
  return { workload, namespace, app, version, identity };
}

const UNKNOWN = 'unknown';

/**
 * reporter=source: this proxy's own identity, the cluster's service and (when reached) the
 * endpoint; `mtls` says whether this proxy speaks mTLS to the endpoint (its identity is then verified).
 */
export function sourcePeerLabels(
  proxy: ProxyNode,
  cluster: ClusterConfig | undefined,
  endpoint: EndpointConfig | undefined,
  mtls = false,
): PeerLabelValues {
  return {
    reporter: 'source',
    source_workload: proxy.workload,
    source_workload_namespace: proxy.namespace,
    source_principal: proxy.identity,
    source_app: proxy.app,
    source_version: proxy.version,
    destination_workload: endpoint?.workload ?? UNKNOWN,
    destination_workload_namespace: endpoint?.namespace ?? UNKNOWN,
    destination_principal: endpoint && mtls ? endpoint.identity : UNKNOWN,
    destination_app: endpoint?.app ?? UNKNOWN,
    destination_version: endpoint?.version ?? UNKNOWN,
    destination_service: cluster?.service.host ?? UNKNOWN,
    destination_service_name: cluster?.service.name ?? UNKNOWN,
    destination_service_namespace: cluster?.service.namespace ?? UNKNOWN,
    // Istio reports the policy only on the server side.
    connection_security_policy: 'unknown',
  };
}

/**
 * reporter=destination: the caller as its certificate proves it (and, over mTLS, as its sidecar
 * describes itself), and this proxy's workload.
 */
export function destinationPeerLabels(
  proxy: ProxyNode,
  source: PeerInfo | undefined,
  service: string,
  connection: { mtls: boolean; principal: string } = { mtls: false, principal: '' },
): PeerLabelValues {
  const principal = connection.mtls ? connection.principal : '';
  const trusted = principal !== '' && source?.identity === principal ? source : undefined;
  return {
    reporter: 'destination',
    source_workload: trusted?.workload ?? UNKNOWN,
    source_workload_namespace: parseSpiffeId(principal)?.namespace ?? UNKNOWN,
    source_principal: principal || UNKNOWN,
    source_app: trusted?.app ?? UNKNOWN,
    source_version: trusted?.version ?? UNKNOWN,
    destination_workload: proxy.workload,
    destination_workload_namespace: proxy.namespace,
    destination_principal: connection.mtls ? proxy.identity : UNKNOWN,
    destination_app: proxy.app,
    destination_version: proxy.version,
    destination_service: service,
    destination_service_name: service.split('.')[0] || UNKNOWN,
    destination_service_namespace: service.split('.')[1] ?? proxy.namespace,
    connection_security_policy: connection.mtls ? 'mutual_tls' : 'none',
  };
}

/** Istio's request_protocol for a request: gRPC by its content type, else HTTP. */
export function requestProtocol(contentType: string | string[] | undefined): 'http' | 'grpc' {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc') ? 'grpc' : 'http';
}
