// The outbound request pipeline: route → split → pick endpoint → forward → telemetry.
//
// Each phase is a small function below, in the order a request meets them. A request keeps the
// runtime tables it started with, even if a new snapshot is swapped in while it runs.

import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { randomUUID, randomBytes } from 'node:crypto';
import type { Random } from '../core/random.ts';
import { MeshError } from '../core/errors.ts';
import { findVirtualHost, type CompiledCluster, type CompiledRouteEntry, type RuntimeConfig, type UpstreamEndpoint } from './compile.ts';
import { findRoute, type RequestView } from './routing/match.ts';
import { forward, forwardableHeaders, sendError, settle, type Outcome } from './forward.ts';
import { encodePeer, PEER_HEADER } from './observe/peer.ts';
import type { AccessLog } from './observe/access-log.ts';

export interface PipelineDeps {
  /** The tables in force now; undefined until the first snapshot is compiled. */
  current(): RuntimeConfig | undefined;
  random: Random;
  accessLog?: AccessLog;
}

/** The request's target: absolute-form (HTTP proxy) or origin-form with Host (edge, transparent). */
export interface Target {
  authority: string;
  port: number;
  path: string;
  query: string;
  /** Path with query, as sent upstream. */
  pathAndQuery: string;
}

/** Phase 0 — where is the request going? `fallbackAuthority` is a CONNECT tunnel's target. */
export function resolveTarget(req: IncomingMessage, fallbackAuthority?: string): Target | undefined {
  let url = req.url ?? '/';
  let authority = req.headers.host ?? fallbackAuthority;
  if (url.startsWith('http://') || url.startsWith('https://')) {
    const start = url.indexOf('//') + 2;
    const slash = url.indexOf('/', start);
    authority = slash === -1 ? url.slice(start) : url.slice(start, slash);
    url = slash === -1 ? '/' : url.slice(slash);
  }
  if (!authority) return undefined;
  const q = url.indexOf('?');
  const colon = authority.lastIndexOf(':');
  const port = colon > 0 && !authority.endsWith(']') ? Number(authority.slice(colon + 1)) : 80;
  return {
    authority,
    port: Number.isFinite(port) ? port : 80,
    path: q === -1 ? url : url.slice(0, q),
    query: q === -1 ? '' : url.slice(q + 1),
    pathAndQuery: url,
  };
}

function requestView(req: IncomingMessage, t: Target): RequestView {
  return {
    method: req.method ?? 'GET',
    path: t.path,
    query: t.query,
    scheme: 'http',
    authority: t.authority,
    port: t.port,
    header(name) {
      if (name === ':authority' || name === 'host') return t.authority;
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(',') : v;
    },
  };
}

/** Phase 2 — split: pick one weighted destination of the route. */
function split(route: CompiledRouteEntry, random: Random): CompiledCluster {
  const d = route.destinations;
  if (d.length === 1) return d[0].cluster;
  const r = random.next() * route.totalWeight;
  for (const x of d) if (r < x.upTo) return x.cluster;
  return d[d.length - 1].cluster;
}

/** Phase 3 — the consistent-hash key, and a cookie to set when the policy says to create one. */
function hashKey(
  cluster: CompiledCluster,
  req: IncomingMessage,
  t: Target,
): { key?: string; setCookie?: string } {
  const h = cluster.hash;
  if (!h) return {};
  if ('header' in h) {
    const v = req.headers[h.header];
    return { key: Array.isArray(v) ? v.join(',') : v };
  }
  if ('queryParameter' in h) return { key: new URLSearchParams(t.query).get(h.queryParameter) ?? undefined };
  if ('sourceIp' in h) return { key: req.socket.remoteAddress };
  const { name, path, ttlSeconds } = h.cookie;
  const existing = readCookie(req.headers.cookie, name);
  if (existing !== undefined || !ttlSeconds) return { key: existing };
  // Envoy generates the cookie when a ttl is given and the request has none.
  const value = randomBytes(8).toString('hex');
  return { key: value, setCookie: `${name}=${value}; Max-Age=${Math.round(ttlSeconds)}${path ? `; Path=${path}` : ''}; HttpOnly` };
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function outboundHandler(deps: PipelineDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse, fallbackAuthority?: string): Promise<void> {
    const start = performance.now();
    const rt = deps.current();
    const target = resolveTarget(req, fallbackAuthority);
    if (!rt || !target) {
      sendError(res, new MeshError(rt ? 'BAD_REQUEST' : 'NO_ROUTE', rt ? 'request has no Host' : 'proxy has no configuration yet'));
      return;
    }

    // Phase 1 — route: the virtual host by authority, then the first matching route.
    const vhost = findVirtualHost(rt, target.authority);
    const route = vhost && findRoute(vhost.routes, requestView(req, target));
    if (!route) {
      const err = new MeshError('NO_ROUTE', `no route for ${target.authority}${target.path}`);
      sendError(res, err);
      rt.noRouteMetrics.record(err.status, err.flag, '', performance.now() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, err.flag, undefined, undefined, start);
      return;
    }
    const action = route.config.action;
    if (action.kind === 'directResponse') {
      const body = action.body ?? '';
      res.writeHead(action.status, { 'content-length': Buffer.byteLength(body), 'content-type': 'text/plain' });
      res.end(body);
      deps.accessLog?.write(req, target, action.status, '-', route.config.name, undefined, start);
      return;
    }

    const cluster = split(route, deps.random);

    // Phase 3 — pick an endpoint.
    const { key, setCookie } = hashKey(cluster, req, target);
    const pick = cluster.balancer.pick({ hashKey: key });
    if (pick.kind === 'fail') {
      const err = new MeshError(pick.code);
      sendError(res, err);
      cluster.unreachedMetrics.record(err.status, err.flag, '', performance.now() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, err.flag, route.config.name, undefined, start);
      return;
    }
    const endpoint = cluster.byKey.get(pick.endpoint.key)!;

    // Phase 4 — forward, with the caller's identity for the server sidecar's metrics.
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = target.authority;
    headers['x-request-id'] ??= randomUUID();
    headers['x-forwarded-proto'] ??= 'http';
    if (endpoint.config.sidecar) headers[PEER_HEADER] = encodePeer(rt.snapshot.proxy);
    const responseExtra: OutgoingHttpHeaders | undefined = setCookie ? { 'set-cookie': setCookie } : undefined;

    endpoint.state.active++;
    let outcome: Outcome;
    try {
      outcome = await forward({
        pool: endpoint.state.pool,
        req,
        res,
        path: target.pathAndQuery,
        headers,
        timeoutMs: action.timeoutMs,
        responseExtra,
      });
    } finally {
      endpoint.state.active--;
    }

    // Phase 5 — answer local failures and record telemetry.
    finish(deps, req, res, target, route.config.name, endpoint, outcome, start);
  };
}

function finish(
  deps: PipelineDeps,
  req: IncomingMessage,
  res: ServerResponse,
  target: Target,
  routeName: string,
  endpoint: UpstreamEndpoint,
  outcome: Outcome,
  start: number,
): void {
  const { status, flag, grpcStatus } = settle(res, outcome);
  endpoint.metrics.record(status, flag, grpcStatus, performance.now() - start, outcome.requestBytes, outcome.responseBytes);
  deps.accessLog?.write(req, target, status, flag, routeName, endpoint.state.key, start);
}
