// The inbound side of a sidecar: traffic from the mesh to the local app, measured as reporter=destination.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { MeshError } from '../core/errors.ts';
import { findVirtualHost, type RuntimeConfig } from './compile.ts';
import { forward, forwardableHeaders, sendError, settle } from './forward.ts';
import type { EndpointStates } from './upstream/endpoints.ts';
import type { MeshMetrics, PeerLabels } from './observe/metrics.ts';
import { decodePeer, destinationPeerLabels, PEER_HEADER } from './observe/peer.ts';
import { resolveTarget } from './pipeline.ts';
import type { AccessLog } from './observe/access-log.ts';

/** Callers are free to send any peer header; bound how many label sets they can create. */
const MAX_PEER_SETS = 1000;

export interface InboundDeps {
  current(): RuntimeConfig | undefined;
  endpoints: EndpointStates;
  metrics: MeshMetrics;
  accessLog?: AccessLog;
}

export function inboundHandler(deps: InboundDeps) {
  const peerSets = new Map<string, PeerLabels>();

  function labelsFor(rt: RuntimeConfig, peerHeader: string | undefined, authority: string): PeerLabels {
    const key = `${rt.version}|${peerHeader ?? ''}|${authority}`;
    let p = peerSets.get(key);
    if (p) return p;
    // The vhost named for this authority gives the service's FQDN (`host:port`).
    const vh = findVirtualHost(rt, authority);
    const service = vh ? vh.config.name.slice(0, vh.config.name.lastIndexOf(':')) : 'unknown';
    if (peerSets.size >= MAX_PEER_SETS) peerSets.clear();
    p = deps.metrics.peer(destinationPeerLabels(rt.snapshot.proxy, decodePeer(peerHeader), service));
    peerSets.set(key, p);
    return p;
  }

  return async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = performance.now();
    const rt = deps.current();
    const app = rt?.snapshot.inbound;
    const target = resolveTarget(req);
    if (!rt || !app || !target) {
      sendError(res, new MeshError('NO_ROUTE', 'sidecar has no inbound configuration yet'));
      return;
    }
    const peerHeader = req.headers[PEER_HEADER] as string | undefined;
    const metrics = labelsFor(rt, peerHeader, target.authority);
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = target.authority;
    const outcome = await forward({
      pool: deps.endpoints.get(app.appHost, app.appPort).pool,
      req,
      res,
      path: target.pathAndQuery,
      headers,
    });
    const { status, flag, grpcStatus } = settle(res, outcome);
    metrics.record(status, flag, grpcStatus, performance.now() - start, outcome.requestBytes, outcome.responseBytes);
    deps.accessLog?.write(req, target, status, flag, 'inbound', `${app.appHost}:${app.appPort}`, start);
  };
}
