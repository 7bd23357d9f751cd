// The inbound side of a sidecar: traffic from the mesh to the local app, measured as reporter=destination.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { MeshError } from '../core/errors.ts';
import { findVirtualHost, type RuntimeConfig } from './compile.ts';
import { forward, forwardableHeaders, sendError, settle } from './forward.ts';
import type { EndpointStates } from './upstream/endpoints.ts';
import type { MeshMetrics, PeerLabels } from './observe/metrics.ts';
import { decodePeer, destinationPeerLabels, PEER_HEADER, requestProtocol } from './observe/peer.ts';
import { resolveTarget } from './pipeline.ts';
import type { AccessLog } from './observe/access-log.ts';
import { H2C, HTTP1 } from './upstream/transport.ts';
import { answer, toApp } from './websocket.ts';
import type { InboundConfig } from '../wire/snapshot.ts';

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

  /** The app's pool, in the protocol of the service port that selects it. */
  const appState = (app: InboundConfig) => deps.endpoints.get(app.appHost, app.appPort, app.protocol === 'h2' ? H2C : HTTP1);

  /** A WebSocket upgrade from the mesh: passed to the app as received, bytes both ways. */
  async function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const start = performance.now();
    const rt = deps.current();
    const app = rt?.snapshot.inbound;
    const target = resolveTarget(req);
    if (!rt || !app || !target) {
      answer(socket, 404, {}, 'sidecar has no inbound configuration yet\n');
      return;
    }
    const metrics = labelsFor(rt, req.headers[PEER_HEADER] as string | undefined, target.authority);
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = target.authority;
    const state = appState(app);
    state.active++;
    const r = await toApp(req, socket, head, { host: app.appHost, port: app.appPort }, target.pathAndQuery, headers);
    state.active--;
    const flag = r.failure ? new MeshError(r.failure).flag : '-';
    metrics.record(r.status, flag, '', performance.now() - start, r.requestBytes, r.responseBytes);
    deps.accessLog?.write(req, target, r.status, flag, 'inbound', `${app.appHost}:${app.appPort}`, start);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
      pool: appState(app).pool,
      req,
      res,
      path: target.pathAndQuery,
      headers,
    });
    const { status, flag, grpcStatus } = settle(res, outcome);
    metrics.record(status, flag, grpcStatus, performance.now() - start, outcome.requestBytes, outcome.responseBytes, requestProtocol(req.headers['content-type']));
    deps.accessLog?.write(req, target, status, flag, 'inbound', `${app.appHost}:${app.appPort}`, start);
  }

  return { handle, upgrade };
}
