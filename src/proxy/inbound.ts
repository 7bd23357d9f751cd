// The inbound side of a sidecar: traffic from the mesh to the local app, measured as reporter=destination.
//
// Phases, in the order a request meets them (the listener has already enforced PeerAuthentication
// and verified an mTLS peer's certificate):
//
// 0. Connection — a connection the listener took under an earlier snapshot whose mode no longer
//    admits it (plaintext once STRICT applies, mTLS once DISABLE does) is reset, as Envoy drains
//    connections of a filter chain that changed.
// 1. Target — authority and path, as the outbound side reads them.
// 2. Normalise the path (security/path.ts): a path that cannot be normalised safely (`%00`, control
//    characters, broken escapes) is refused with 400. The normalised path is what authorization
//    sees and what the app gets, so the app never acts on a path other than the one authorized.
// 3. Authorize (security/authz.ts): the AuthorizationPolicies that apply to the workload, against
//    the peer's verified principal (none over plaintext), source address, the workload port, host,
//    method, normalised path and headers. Denied: 403 `RBAC: access denied` (for gRPC, Envoy's
//    conversion: trailers-only with grpc-status 7 PERMISSION_DENIED).
// 4. Forward to the app in its own protocol and stream the answer back; `x-weft-peer` never reaches it.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorShape, MeshError } from '../core/errors.ts';
import { normalizePath } from '../security/path.ts';
import type { AuthzDecision } from '../security/authz.ts';
import { findVirtualHost, type RuntimeConfig } from './compile.ts';
import { answerWhole, forward, forwardableHeaders, sendError, settle } from './forward.ts';
import type { EndpointStates } from './upstream/endpoints.ts';
import type { MeshMetrics, PeerLabels } from './observe/metrics.ts';
import { decodePeer, destinationPeerLabels, PEER_HEADER, requestProtocol } from './observe/peer.ts';
import { resolveTarget, type Target } from './pipeline.ts';
import type { AccessLog } from './observe/access-log.ts';
import { H2C, HTTP1 } from './upstream/transport.ts';
import { answer, toApp } from './websocket.ts';
import type { InboundConfig } from '../wire/snapshot.ts';
import type { InboundPolicy } from './inbound-policy.ts';
import { connectionPeer, type ConnectionPeer } from './tls.ts';
import { monotonicMs } from '../core/clock.ts';

/** Phase 0: may this connection still be served under the mode in force? */
function connectionAdmitted(peer: ConnectionPeer, policy: InboundPolicy | undefined): boolean {
  const mode = policy?.mode ?? 'PERMISSIVE';
  return peer.mtls ? mode !== 'DISABLE' : mode !== 'STRICT';
}

/** Reset the connection a request came on (over HTTP/2, its session: every stream on it is in the same case). */
function resetConnection(req: IncomingMessage): void {
  const stream = (req as unknown as { stream?: { session?: { destroy(): void } } }).stream;
  if (stream?.session) stream.session.destroy();
  else req.socket.resetAndDestroy();
}

/** Callers are free to send any peer header; bound how many label sets they can create. */
const MAX_PEER_SETS = 1000;

export interface InboundDeps {
  current(): RuntimeConfig | undefined;
  /** Compiled with `current` from the same snapshot and swapped with it. */
  policy(): InboundPolicy | undefined;
  endpoints: EndpointStates;
  metrics: MeshMetrics;
  accessLog?: AccessLog;
}

/** What phases 2 and 3 decided: go on with the normalised path, or answer with the refusal. */
type Admission = { ok: true; path: string } | { ok: false; code: 'BAD_REQUEST' | 'RBAC_DENIED'; reason: string };

/** What phases 0–3 decided for a request or a WebSocket upgrade alike; each answers in its own way. */
type Received =
  | { kind: 'unconfigured' }
  | { kind: 'reset' }
  | { kind: 'refused'; code: 'BAD_REQUEST' | 'RBAC_DENIED'; target: Target; metrics: PeerLabels }
  | { kind: 'admitted'; target: Target; metrics: PeerLabels; app: InboundConfig; path: string; headers: Record<string, string | string[]> };

export function inboundHandler(deps: InboundDeps) {
  const peerSets = new Map<string, PeerLabels>();

  function labelsFor(rt: RuntimeConfig, peer: ConnectionPeer, peerHeader: string | undefined, authority: string): PeerLabels {
    // The peer header is believed only over mTLS (and only when it names the certificate's identity).
    const header = peer.mtls ? peerHeader : undefined;
    const key = `${rt.version}|${peer.principal}|${header ?? ''}|${authority}`;
    let p = peerSets.get(key);
    if (p) return p;
    // The vhost named for this authority gives the service's FQDN (`host:port`).
    const vh = findVirtualHost(rt, authority);
    const service = vh ? vh.config.name.slice(0, vh.config.name.lastIndexOf(':')) : 'unknown';
    if (peerSets.size >= MAX_PEER_SETS) peerSets.clear();
    p = deps.metrics.peer(destinationPeerLabels(rt.snapshot.proxy, decodePeer(header), service, peer));
    peerSets.set(key, p);
    return p;
  }

  /** Phases 2 and 3: normalise the path, then ask the workload's AuthorizationPolicies. */
  function admit(req: IncomingMessage, target: Target, peer: ConnectionPeer, policy: InboundPolicy | undefined): Admission {
    const normalized = normalizePath(target.pathAndQuery);
    if (!normalized.ok) return { ok: false, code: 'BAD_REQUEST', reason: normalized.reason };
    const decision: AuthzDecision | undefined = policy?.authz?.evaluate({
      principal: peer.principal,
      sourceIp: req.socket.remoteAddress ?? '',
      destinationIp: req.socket.localAddress,
      port: policy.port,
      http: { host: target.authority, method: req.method ?? 'GET', path: normalized.path, headers: req.headers },
    });
    if (decision && !decision.allowed) return { ok: false, code: 'RBAC_DENIED', reason: decision.details ?? decision.reason };
    return { ok: true, path: normalized.target };
  }

  /** The refusal as the caller sees it: Envoy's local reply, converted for gRPC callers as Envoy does. */
  function refuse(req: IncomingMessage, res: ServerResponse, code: 'BAD_REQUEST' | 'RBAC_DENIED'): { status: number; grpcStatus: string } {
    const shape = errorShape(code);
    if (requestProtocol(req.headers['content-type']) === 'grpc') {
      const grpcStatus = code === 'RBAC_DENIED' ? '7' : '13'; // PERMISSION_DENIED; INTERNAL (Envoy's mapping of 400)
      answerWhole(res, 200, { 'content-type': 'application/grpc', 'grpc-status': grpcStatus, 'grpc-message': shape.body }, '');
      return { status: 200, grpcStatus };
    }
    answerWhole(res, shape.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(shape.body) }, shape.body);
    return { status: shape.status, grpcStatus: '' };
  }

  /** Phases 0–3, the same for a request and an upgrade: the headers for the app come with an admission. */
  function receive(req: IncomingMessage): Received {
    const rt = deps.current();
    const policy = deps.policy();
    const app = rt?.snapshot.inbound;
    const target = resolveTarget(req);
    if (!rt || !app || !target) return { kind: 'unconfigured' };
    const peer = connectionPeer(req.socket);
    if (!connectionAdmitted(peer, policy)) return { kind: 'reset' };
    const metrics = labelsFor(rt, peer, req.headers[PEER_HEADER] as string | undefined, target.authority);
    const admitted = admit(req, target, peer, policy);
    if (!admitted.ok) return { kind: 'refused', code: admitted.code, target, metrics };
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = target.authority;
    return { kind: 'admitted', target, metrics, app, path: admitted.path, headers };
  }

  /** The app's pool, in the protocol of the service port that selects it. */
  const appState = (app: InboundConfig) => deps.endpoints.get(app.appHost, app.appPort, app.protocol === 'h2' ? H2C : HTTP1);

  /** A WebSocket upgrade from the mesh: admitted like any request, then passed to the app as bytes. */
  async function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    const start = monotonicMs();
    const entry = receive(req);
    if (entry.kind === 'unconfigured') {
      answer(socket, 404, {}, 'sidecar has no inbound configuration yet\n');
      return;
    }
    if (entry.kind === 'reset') {
      socket.resetAndDestroy();
      return;
    }
    const { target, metrics } = entry;
    if (entry.kind === 'refused') {
      const shape = errorShape(entry.code);
      answer(socket, shape.status, { 'content-type': 'text/plain' }, shape.body);
      metrics.record(shape.status, shape.flag, '', monotonicMs() - start, 0, Buffer.byteLength(shape.body));
      deps.accessLog?.write(req, target, shape.status, shape.flag, 'inbound', undefined, start);
      return;
    }
    const { app } = entry;
    const state = appState(app);
    state.active++;
    const r = await toApp(req, socket, head, { host: app.appHost, port: app.appPort }, entry.path, entry.headers);
    state.active--;
    const flag = r.failure ? new MeshError(r.failure).flag : '-';
    metrics.record(r.status, flag, '', monotonicMs() - start, r.requestBytes, r.responseBytes);
    deps.accessLog?.write(req, target, r.status, flag, 'inbound', `${app.appHost}:${app.appPort}`, start);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const start = monotonicMs();
    const entry = receive(req);
    if (entry.kind === 'unconfigured') {
      sendError(res, new MeshError('NO_ROUTE', 'sidecar has no inbound configuration yet'));
      return;
    }
    if (entry.kind === 'reset') {
      resetConnection(req);
      return;
    }
    const { target, metrics } = entry;
    const protocol = requestProtocol(req.headers['content-type']);
    if (entry.kind === 'refused') {
      req.resume(); // the body is not wanted; let the connection carry on
      const { status, grpcStatus } = refuse(req, res, entry.code);
      const flag = errorShape(entry.code).flag;
      metrics.record(status, flag, grpcStatus, monotonicMs() - start, 0, 0, protocol);
      deps.accessLog?.write(req, target, status, flag, 'inbound', undefined, start);
      return;
    }
    const { app } = entry;
    const outcome = await forward({
      pool: appState(app).pool,
      req,
      res,
      path: entry.path,
      headers: entry.headers,
    });
    const { status, flag, grpcStatus } = settle(res, outcome);
    metrics.record(status, flag, grpcStatus, monotonicMs() - start, outcome.requestBytes, outcome.responseBytes, protocol);
    deps.accessLog?.write(req, target, status, flag, 'inbound', `${app.appHost}:${app.appPort}`, start);
  }

  return { handle, upgrade };
}
