// Peer labels: who is talking to whom, as Istio's standard metrics name it.

import type { ClusterConfig, EndpointConfig, ProxyNode } from '../../wire/snapshot.ts';
import type { PeerLabelValues } from './metrics.ts';

/** Metadata a client sidecar passes to the server sidecar (Istio's peer metadata exchange, simplified). */
export const PEER_HEADER = 'x-weft-peer';

export interface PeerInfo {
  workload: string;
  namespace: string;
  app: string;
  version: string;
  identity: string;
}

export function encodePeer(p: ProxyNode): string {
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

/** reporter=source: this proxy's own identity, the cluster's service and (when reached) the endpoint. */
export function sourcePeerLabels(
  proxy: ProxyNode,
  cluster: ClusterConfig | undefined,
  endpoint: EndpointConfig | undefined,
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
    destination_principal: endpoint?.identity ?? UNKNOWN,
    destination_app: endpoint?.app ?? UNKNOWN,
    destination_version: endpoint?.version ?? UNKNOWN,
    destination_service: cluster?.service.host ?? UNKNOWN,
    destination_service_name: cluster?.service.name ?? UNKNOWN,
    destination_service_namespace: cluster?.service.namespace ?? UNKNOWN,
    // No mTLS yet between sidecars: say so rather than claim it.
    connection_security_policy: 'unknown',
  };
}

/** reporter=destination: the caller as its sidecar described itself, and this proxy's workload. */
export function destinationPeerLabels(proxy: ProxyNode, source: PeerInfo | undefined, service: string): PeerLabelValues {
  return {
    reporter: 'destination',
    source_workload: source?.workload ?? UNKNOWN,
    source_workload_namespace: source?.namespace ?? UNKNOWN,
    source_principal: source?.identity ?? UNKNOWN,
    source_app: source?.app ?? UNKNOWN,
    source_version: source?.version ?? UNKNOWN,
    destination_workload: proxy.workload,
    destination_workload_namespace: proxy.namespace,
    destination_principal: proxy.identity,
    destination_app: proxy.app,
    destination_version: proxy.version,
    destination_service: service,
    destination_service_name: service.split('.')[0] || UNKNOWN,
    destination_service_namespace: service.split('.')[1] ?? proxy.namespace,
    connection_security_policy: 'none',
  };
}

/** Istio's request_protocol for a request: gRPC by its content type, else HTTP. */
export function requestProtocol(contentType: string | string[] | undefined): 'http' | 'grpc' {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc') ? 'grpc' : 'http';
}
