// WebSocket (HTTP/1.1 `Upgrade`) pass-through: the request is routed like any other — virtual
// host, route, split, endpoint — then the proxy opens a connection to the endpoint, writes the
// request head and passes bytes both ways until either side closes. Counted in the metrics with
// the status the upstream answered the upgrade with (101 when it switched); outlier detection
// hears that status once per try when it comes (101 a success, 5xx an error of the endpoint), or
// a reset when the upstream closes without answering.
//
// What applies as for any request: route match, direct responses, redirects, fault injection, the
// split, `rewrite.uri`/`rewrite.authority`, request header operations, consistent hashing on
// request properties, the circuit limits (an upgrade is an active request on the cluster until
// either side closes: overflow is 503 `UO` before anything reaches the upstream, a full pool
// queues it), retries of connect failures on another endpoint (each retry needs a ticket from
// `http.maxRetries` or the `retryBudget`: one over the limit is skipped, the failure stands, flag
// `UO`). What does not: response header operations and CORS (the answer passes through as
// bytes), the route timeout (an upgraded connection lives as long as its peers keep it), mirrors.

import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MeshError, type ErrorCode } from '../core/errors.ts';
import { findVirtualHost, type UpstreamEndpoint } from './compile.ts';
import { findRouteMatch } from './routing/match.ts';
import { decideFault } from './routing/fault.ts';
import { backoffMs } from './routing/retry.ts';
import { forwardableHeaders } from './forward.ts';
import { admit, hashKey, ownAnswer, pickEndpoint, requestView, resolveTarget, split, type PipelineDeps } from './pipeline.ts';
import type { Go, RetryTicket } from './upstream/limits.ts';
import type { OutlierOutcome } from './upstream/outlier.ts';
import { connectRaw, HTTP1, type Transport } from './upstream/transport.ts';
import { hostName } from './upstream/h2.ts';
import { encodePeer, PEER_HEADER } from './observe/peer.ts';
import { monotonicMs } from '../core/clock.ts';

/** The outbound side (sidecar outbound, edge): route the upgrade, then pass bytes through. */
export function outboundUpgradeHandler(deps: PipelineDeps) {
  return async function handle(req: IncomingMessage, client: Socket, head: Buffer, fallbackAuthority?: string): Promise<void> {
    const start = monotonicMs();
    client.on('error', () => client.destroy());
    const rt = deps.current();
    const target = resolveTarget(req, fallbackAuthority);
    if (!rt || !target) {
      const err = new MeshError(rt ? 'BAD_REQUEST' : 'NO_ROUTE', rt ? 'request has no Host' : 'proxy has no configuration yet');
      answer(client, err.status, {}, err.message + '\n');
      return;
    }
    const vhost = findVirtualHost(rt, target.authority);
    const found = vhost && findRouteMatch(vhost.routes, requestView(req, target));
    if (!found) {
      const err = new MeshError('NO_ROUTE', `no route for ${target.authority}${target.path}`);
      answer(client, err.status, {}, err.message + '\n');
      rt.noRouteMetrics.record(err.status, err.flag, '', monotonicMs() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, err.flag, undefined, undefined, start);
      return;
    }
    const route = found.route;
    const action = route.config.action;
    const local = (status: number, headers: Record<string, string>, body: string, flag: string) => {
      answer(client, status, headers, body);
      const cluster = route.destinations[0]?.cluster;
      (cluster?.unreachedMetrics ?? rt.noRouteMetrics).record(status, flag, '', monotonicMs() - start, 0, Buffer.byteLength(body));
      deps.accessLog?.write(req, target, status, flag, route.config.name, undefined, start);
    };
    const fault = action.kind !== 'redirect' ? decideFault(action.fault, deps.random) : undefined;
    const faultFlags: string[] = [];
    if (fault?.delayMs !== undefined) {
      faultFlags.push('DI');
      await sleep(fault.delayMs);
      if (client.destroyed) return;
    }
    if (fault?.abort) {
      faultFlags.push('FI');
      local('httpStatus' in fault.abort ? fault.abort.httpStatus : 503, { 'content-type': 'text/plain' }, 'fault filter abort', faultFlags.join(','));
      return;
    }
    if (action.kind !== 'route') {
      // A redirect draws no fault, so its flags are '-' too.
      const own = ownAnswer(action, target, undefined, faultFlags.join(',') || '-');
      local(own.status, own.headers, own.body, own.flag);
      return;
    }

    // Split, and the request as it goes upstream (as the pipeline's phase 4 builds it).
    const dest = split(route, deps.random);
    const cluster = dest.cluster;
    let path = target.pathAndQuery;
    if (route.rewritePath) {
      const rewritten = route.rewritePath(target.path, found.item);
      path = target.query ? `${rewritten}?${target.query}` : rewritten;
    }
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = action.rewrite?.authority ?? target.authority;
    headers['x-request-id'] ??= randomUUID();
    headers['x-forwarded-proto'] ??= 'http';
    if (rt.snapshot.proxy.kind === 'edge' && req.socket.remoteAddress) {
      const prior = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = prior ? `${prior}, ${req.socket.remoteAddress}` : req.socket.remoteAddress;
    }
    dest.requestHeaders?.(headers);
    if (action.rewrite?.authority) headers.host = action.rewrite.authority;

    // Pick, admit and connect; a connect failure is retried on another endpoint when the policy says
    // so and the circuit limits allow the retry, as the pipeline's tryCluster does.
    const { key } = hashKey(cluster, req, target);
    const retry = route.retry;
    const tried = new Set<string>();
    const maxTries = 1 + (retry?.config.attempts ?? 0);
    // A client that leaves before the upstream is there has given up: stop waiting.
    const gone = new AbortController();
    const onGone = () => gone.abort();
    client.once('close', onGone);
    let endpoint: UpstreamEndpoint | undefined;
    let upstream: Socket | undefined;
    let failure: ErrorCode | undefined;
    let go: Go | undefined;
    // The retry under way holds a ticket until its connect fails or the upstream answers the
    // upgrade (Envoy's retry state frees a retry at the answer's headers), not while the upgraded
    // connection lives: an open WebSocket would otherwise use up maxRetries for the whole cluster.
    let ticket: RetryTicket | undefined;
    let retryOverflow = false;
    for (let n = 0; n < maxTries && !gone.signal.aborted; n++) {
      if (n > 0) await sleep(backoffMs(retry!.config, n, deps.random), undefined, { signal: gone.signal }).catch(() => {});
      if (gone.signal.aborted) break;
      const picked = pickEndpoint(cluster, key, tried, retry?.config.avoidPreviousHosts ?? false);
      if (typeof picked === 'string') {
        failure = picked;
        break;
      }
      endpoint = picked;
      tried.add(endpoint.state.key);
      // Circuit limits as for any try: the upgraded connection is an active request on the cluster
      // for as long as it lives (Envoy's pool counts the upgrade's stream until it ends).
      const admitted = await admit(cluster.state, gone.signal);
      if (admitted === 'overflow' || admitted === 'aborted') {
        failure = admitted === 'overflow' ? 'OVERFLOW' : 'DOWNSTREAM_DISCONNECT';
        break;
      }
      try {
        upstream = await connectRaw(endpoint.config.host, endpoint.config.port, endpoint.state.transport, hostName(headers.host as string));
        go = admitted;
        failure = undefined;
        break;
      } catch {
        admitted.release();
        ticket?.release();
        failure = 'UPSTREAM_CONNECT_FAILURE';
        cluster.state.record(endpoint.state.key, { kind: 'local', code: failure });
        if (n + 1 >= maxTries || !retry?.retriable({ kind: 'local', code: failure })) break;
        const t = cluster.state.beginRetry();
        if (t === 'overflow') {
          retryOverflow = true;
          break;
        }
        ticket = t;
      }
    }
    client.off('close', onGone);
    if (upstream && gone.signal.aborted) {
      // The client left while the connection was being made.
      upstream.destroy();
      upstream = undefined;
      go?.release();
    }
    const metrics = endpoint?.metrics ?? cluster.unreachedMetrics;
    if (!upstream || !go) {
      ticket?.release();
      const err = new MeshError(gone.signal.aborted ? 'DOWNSTREAM_DISCONNECT' : (failure ?? 'NO_HEALTHY_UPSTREAM'));
      if (!gone.signal.aborted) answer(client, err.status, { ...err.headers }, err.message + '\n');
      const flag = [...faultFlags, ...(retryOverflow ? ['UO'] : []), err.flag].join(',');
      metrics.record(err.status, flag, '', monotonicMs() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, flag, route.config.name, endpoint?.state.key, start);
      return;
    }
    if (endpoint!.config.sidecar) headers[PEER_HEADER] = encodePeer(rt.snapshot.proxy);
    endpoint!.state.active++;
    // The admission is held until either side closes (refused upgrade, cut, clean close alike),
    // not until both have: a client that keeps its end open after the upstream hung up holds nothing.
    upstream.once('close', go.release);
    client.once('close', go.release);
    // The answer (or why none came) goes to outlier detection once, when it comes, not at close:
    // an open WebSocket is a success as of its 101, and frees the retry's ticket then.
    const answeredBy = endpoint!.state.key;
    const r = await passThrough(client, head, upstream, upgradeHead(req, path, headers), (outcome) => {
      ticket?.release();
      cluster.state.record(answeredBy, outcome);
    });
    go.release();
    ticket?.release();
    endpoint!.state.active--;
    const flag = [...faultFlags, ...(r.failure ? [new MeshError(r.failure).flag] : [])].join(',') || '-';
    metrics.record(r.status, flag, '', monotonicMs() - start, r.requestBytes, r.responseBytes);
    deps.accessLog?.write(req, target, r.status, flag, route.config.name, endpoint!.state.key, start);
  };
}

/** The request head to send upstream: the forwarded headers plus the upgrade's own two. */
export function upgradeHead(req: IncomingMessage, path: string, headers: Record<string, string | string[]>): string {
  const lines = [`${req.method ?? 'GET'} ${path} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  lines.push('connection: Upgrade', `upgrade: ${req.headers.upgrade ?? 'websocket'}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

/**
 * Write the request head (and whatever the client sent after it) upstream, then pass bytes both
 * ways until either side closes, closing the other (an error on one side destroys the other, so
 * a cut reaches the peer as a cut). The status is read from the upstream's status line; an
 * upstream that closes before answering is a reset, answered 503 to the client, and a client that
 * leaves before the answer is a disconnect. `onOutcome` hears once, for outlier detection, the
 * status as soon as it is read, or else — when the upstream closes — why none came.
 */
export function passThrough(
  client: Socket,
  head: Buffer,
  upstream: Socket,
  requestHead: string,
  onOutcome?: (outcome: OutlierOutcome) => void,
): Promise<{ status: number; requestBytes: number; responseBytes: number; failure?: ErrorCode }> {
  return new Promise((resolve) => {
    let status = 0;
    let statusLine = '';
    let requestBytes = head.length;
    let responseBytes = 0;
    let failure: ErrorCode | undefined;
    let closed = 0;
    const settle = () => {
      if (++closed < 2) return;
      if (status === 0) status = new MeshError(failure ?? 'UPSTREAM_RESET').status;
      resolve({ status, requestBytes, responseBytes, failure: failure ?? (responseBytes === 0 ? 'UPSTREAM_RESET' : undefined) });
    };
    upstream.on('data', (c: Buffer) => {
      responseBytes += c.length;
      if (status === 0) {
        statusLine += c.toString('latin1', 0, Math.min(c.length, 64));
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
        if (m) {
          status = Number(m[1]);
          onOutcome?.({ kind: 'response', status });
        }
      }
    });
    client.on('data', (c: Buffer) => (requestBytes += c.length));
    upstream.on('error', () => {
      failure ??= 'UPSTREAM_RESET';
      client.destroy();
    });
    client.on('error', () => {
      failure ??= 'DOWNSTREAM_DISCONNECT';
      upstream.destroy();
    });
    upstream.on('close', () => {
      if (status === 0) onOutcome?.({ kind: 'local', code: failure ?? 'UPSTREAM_RESET' });
      if (responseBytes === 0 && !client.destroyed) {
        const err = new MeshError('UPSTREAM_RESET');
        answer(client, err.status, {}, err.message + '\n');
      } else if (failure) client.destroy();
      else client.end();
      settle();
    });
    client.on('close', () => {
      if (!upstream.destroyed) {
        if (status === 0) failure ??= 'DOWNSTREAM_DISCONNECT';
        upstream.destroy();
      }
      settle();
    });
    upstream.write(requestHead);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client, { end: false });
    client.pipe(upstream, { end: false });
  });
}

/** An answer the proxy writes itself on a socket taken over for an upgrade; then the socket closes. */
export function answer(socket: Socket, status: number, headers: Record<string, string>, body: string): void {
  if (socket.destroyed) return;
  const lines = [`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`];
  for (const [k, v] of Object.entries({ ...headers, 'content-length': String(Buffer.byteLength(body)), connection: 'close' })) lines.push(`${k}: ${v}`);
  socket.end(lines.join('\r\n') + '\r\n\r\n' + body);
}

/** The inbound side: the upgrade to the local app, as received (less the peer header). */
export async function toApp(
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
  app: { host: string; port: number },
  path: string,
  headers: Record<string, string | string[]>,
  transport: Transport = HTTP1,
): Promise<{ status: number; requestBytes: number; responseBytes: number; failure?: ErrorCode }> {
  client.on('error', () => client.destroy());
  let upstream: Socket;
  try {
    upstream = await connectRaw(app.host, app.port, transport, undefined);
  } catch {
    const err = new MeshError('UPSTREAM_CONNECT_FAILURE');
    answer(client, err.status, {}, err.message + '\n');
    return { status: err.status, requestBytes: 0, responseBytes: 0, failure: 'UPSTREAM_CONNECT_FAILURE' };
  }
  return passThrough(client, head, upstream, upgradeHead(req, path, headers));
}
