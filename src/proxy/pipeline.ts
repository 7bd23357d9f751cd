// The outbound request pipeline: route → CORS → fault → answer locally or split → mirror → pick →
// try (with retries) → relay → telemetry.
//
// Each phase is a small function below, in the order a request meets them. A request keeps the
// runtime tables it started with, even if a new snapshot is swapped in while it runs.

import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { randomUUID, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Random } from '../core/random.ts';
import { MeshError, type ErrorCode } from '../core/errors.ts';
import type { RetryPolicyConfig } from '../wire/snapshot.ts';
import {
  findVirtualHost,
  type CompiledCluster,
  type CompiledDestination,
  type CompiledRouteEntry,
  type RuntimeConfig,
  type UpstreamEndpoint,
} from './compile.ts';
import { findRouteMatch, type RequestView } from './routing/match.ts';
import { decideFault, GRPC_STATUS_CODES } from './routing/fault.ts';
import { redirectLocation } from './routing/rewrite.ts';
import { backoffMs } from './routing/retry.ts';
import { answerWhole, grpcStatusOf, forwardableHeaders, hasRequestBody, relay, requestBody, sendError, tryUpstream, type TryOutcome } from './forward.ts';
import { ReplayableBody } from './upstream/replay.ts';
import { setCookieValue } from './upstream/lb/hash-cookie.ts';
import { encodePeer, PEER_HEADER, requestProtocol } from './observe/peer.ts';
import type { AccessLog } from './observe/access-log.ts';

/** How much of a request body is kept so a retry or a mirror can send it again (Envoy's default). */
export const REPLAY_BUFFER_BYTES = 1 << 20;
/** Envoy's host_selection_retry_max_attempts as Istio sets it. */
const HOST_SELECTION_ATTEMPTS = 5;

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

export function requestView(req: IncomingMessage, t: Target): RequestView {
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

/** Phase 4 — split: pick one weighted destination of the route. */
export function split(route: CompiledRouteEntry, random: Random): CompiledDestination {
  const d = route.destinations;
  if (d.length === 1) return d[0];
  const r = random.next() * route.totalWeight;
  for (const x of d) if (r < x.upTo) return x;
  return d[d.length - 1];
}

/** Phase 6 — the consistent-hash key, and a cookie to set when the policy says to create one. */
export function hashKey(cluster: CompiledCluster, req: IncomingMessage, t: Target): { key?: string; setCookie?: string } {
  const h = cluster.hash;
  if (!h) return {};
  if ('header' in h) {
    const v = req.headers[h.header];
    return { key: Array.isArray(v) ? v.join(',') : v };
  }
  if ('queryParameter' in h) return { key: new URLSearchParams(t.query).get(h.queryParameter) ?? undefined };
  if ('sourceIp' in h) return { key: req.socket.remoteAddress };
  const existing = readCookie(req.headers.cookie, h.cookie.name);
  if (existing !== undefined || h.cookie.ttlSeconds === undefined) return { key: existing };
  // Envoy generates the cookie when a ttl is given and the request has none (ttl 0: a session cookie).
  const value = randomBytes(8).toString('hex');
  return { key: value, setCookie: setCookieValue(h.cookie, value) };
}

function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Phase 6 — pick an endpoint; on a retry, avoid hosts already tried when the policy says so. */
export function pickEndpoint(cluster: CompiledCluster, key: string | undefined, tried: Set<string>, avoid: boolean): UpstreamEndpoint | ErrorCode {
  let chosen: UpstreamEndpoint | undefined;
  for (let i = 0; i < (avoid && tried.size > 0 ? HOST_SELECTION_ATTEMPTS : 1); i++) {
    const pick = cluster.balancer.pick({ hashKey: key });
    if (pick.kind === 'fail') return pick.code;
    chosen = cluster.byKey.get(pick.endpoint.key)!;
    if (!tried.has(chosen.state.key)) break;
  }
  return chosen!;
}

/** Flags joined as Envoy prints them (`DI,UF`), or `-`. */
function flags(list: string[]): string {
  return list.length === 0 ? '-' : list.join(',');
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
    const view = requestView(req, target);

    // Phase 1 — route: the virtual host by authority, then the first matching route.
    const vhost = findVirtualHost(rt, target.authority);
    const found = vhost && findRouteMatch(vhost.routes, view);
    if (!found) {
      const err = new MeshError('NO_ROUTE', `no route for ${target.authority}${target.path}`);
      sendError(res, err);
      rt.noRouteMetrics.record(err.status, err.flag, '', performance.now() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, err.flag, undefined, undefined, start);
      return;
    }
    const route = found.route;
    const action = route.config.action;
    const localAnswer = (status: number, headers: OutgoingHttpHeaders, body: string, flag: string) => {
      route.responseHeaders?.(headers);
      headers['content-length'] = Buffer.byteLength(body);
      answerWhole(res, status, headers, body);
      const cluster = route.destinations[0]?.cluster;
      (cluster?.unreachedMetrics ?? rt.noRouteMetrics).record(status, flag, '', performance.now() - start, 0, Buffer.byteLength(body));
      deps.accessLog?.write(req, target, status, flag, route.config.name, undefined, start);
    };

    // Phase 2 — CORS: answer a preflight the policy allows; note the headers for the real answer.
    const origin = req.headers.origin;
    let corsHeaders: Record<string, string> | undefined;
    if (route.cors && origin !== undefined) {
      const preflightMethod = req.headers['access-control-request-method'];
      if (req.method === 'OPTIONS' && preflightMethod !== undefined) {
        const allowed = route.cors.preflight(origin, preflightMethod);
        if (allowed || (action.cors?.unmatchedPreflights ?? 'FORWARD') === 'IGNORE') {
          localAnswer(200, { ...allowed }, '', '-');
          return;
        }
      }
      corsHeaders = route.cors.responseHeaders(origin);
    }

    // Phase 3 — fault injection, then the answers the proxy makes itself.
    const fault = action.kind !== 'redirect' ? decideFault(action.fault, deps.random) : undefined;
    const faultFlags: string[] = [];
    if (fault?.delayMs !== undefined) {
      faultFlags.push('DI');
      const gone = new AbortController();
      const onClose = () => gone.abort();
      res.once('close', onClose);
      await sleep(fault.delayMs, undefined, { signal: gone.signal }).catch(() => {});
      res.off('close', onClose);
      if (gone.signal.aborted) return;
    }
    if (fault?.abort) {
      faultFlags.push('FI');
      const a = fault.abort;
      if ('httpStatus' in a) localAnswer(a.httpStatus, { 'content-type': 'text/plain', ...corsHeaders }, 'fault filter abort', flags(faultFlags));
      else
        localAnswer(200, { 'content-type': 'application/grpc', 'grpc-status': GRPC_STATUS_CODES[a.grpcStatus] ?? a.grpcStatus, 'grpc-message': 'fault filter abort', ...corsHeaders }, '', flags(faultFlags));
      return;
    }
    if (action.kind === 'directResponse') {
      localAnswer(action.status, { 'content-type': 'text/plain', ...corsHeaders }, action.body ?? '', flags(faultFlags));
      return;
    }
    if (action.kind === 'redirect') {
      const location = redirectLocation(action, { scheme: 'http', authority: target.authority, path: target.path, query: target.query });
      localAnswer(action.status, { location, ...corsHeaders }, '', '-');
      return;
    }

    // Phase 4 — split, and the request as it goes upstream.
    const dest = split(route, deps.random);
    const cluster = dest.cluster;
    const authority = action.rewrite?.authority ?? target.authority;
    let path = target.pathAndQuery;
    if (route.rewritePath) {
      const rewritten = route.rewritePath(target.path, found.item);
      path = target.query ? `${rewritten}?${target.query}` : rewritten;
    }
    const headers = forwardableHeaders(req.rawHeaders, PEER_HEADER);
    headers.host = authority;
    headers['x-request-id'] ??= randomUUID();
    headers['x-forwarded-proto'] ??= 'http';
    if (rt.snapshot.proxy.kind === 'edge' && req.socket.remoteAddress) {
      // The edge is where callers enter the mesh: record who called, as Envoy does at a gateway.
      const prior = headers['x-forwarded-for'];
      headers['x-forwarded-for'] = prior ? `${prior}, ${req.socket.remoteAddress}` : req.socket.remoteAddress;
    }
    dest.requestHeaders?.(headers as Record<string, string | string[]>);
    if (action.rewrite?.authority) headers.host = action.rewrite.authority;

    // The body: replayable within a bound when a retry or a mirror may need it again.
    const hasBody = hasRequestBody(req);
    const retry = route.retry;
    const replay = hasBody && (retry || route.mirrors.length > 0) ? new ReplayableBody(req, REPLAY_BUFFER_BYTES) : undefined;
    const plain = replay ? undefined : requestBody(req);

    // Phase 5 — mirrors: fire and forget, never waited for, Host with `-shadow`.
    for (const m of route.mirrors) if (deps.random.next() * 100 < m.percent) mirror(m.cluster, req, target, headers, path, replay, hasBody);

    // Phase 6–7 — pick, try, retry.
    const { key, setCookie } = hashKey(cluster, req, target);
    const extra: OutgoingHttpHeaders | undefined = setCookie || corsHeaders ? { ...(setCookie ? { 'set-cookie': setCookie } : {}), ...corsHeaders } : undefined;
    const peer = encodePeer(rt.snapshot.proxy);
    const overall = new AbortController();
    let overallTimedOut = false;
    const timer = action.timeoutMs
      ? setTimeout(() => {
          overallTimedOut = true;
          overall.abort();
        }, action.timeoutMs)
      : undefined;
    const onClientClose = () => {
      if (!res.writableFinished) overall.abort();
    };
    res.once('close', onClientClose);
    const tried = new Set<string>();
    const maxTries = 1 + (retry?.config.attempts ?? 0);
    let endpoint: UpstreamEndpoint | undefined;
    let last: { status: number; grpcStatus: string; code?: ErrorCode } | undefined;
    let responseBytes = 0;
    let headersSent = false;
    let retriesExhausted = false;
    try {
      for (let n = 0; n < maxTries; n++) {
        if (n > 0) await sleep(backoffMs(retry!.config, n, deps.random), undefined, { signal: overall.signal }).catch(() => {});
        if (overall.signal.aborted) {
          last = { status: 0, grpcStatus: '', code: overallTimedOut ? 'UPSTREAM_TIMEOUT' : 'DOWNSTREAM_DISCONNECT' };
          break;
        }
        const picked = pickEndpoint(cluster, key, tried, retry?.config.avoidPreviousHosts ?? false);
        if (typeof picked === 'string') {
          last = { status: 0, grpcStatus: '', code: picked };
          break;
        }
        endpoint = picked;
        tried.add(endpoint.state.key);
        const body: Readable | undefined = replay ? replay.reader(true) : plain!.body;
        if (hasBody && replay && !body) break; // the body no longer fits the replay buffer: no further try
        if (endpoint.config.sidecar) headers[PEER_HEADER] = peer;
        else delete headers[PEER_HEADER];
        const outcome = await tryOnce(endpoint, req.method ?? 'GET', path, headers, body, overall.signal, retry?.config, () => overallTimedOut);
        const moreTries = n + 1 < maxTries && (!hasBody || (replay?.replayable ?? false));
        if (outcome.kind === 'response') {
          const status = outcome.data.statusCode;
          const grpcStatus = grpcStatusOf(outcome.data);
          last = { status, grpcStatus };
          if (retry && retry.retriable({ kind: 'response', status, grpcStatus })) {
            if (moreTries) {
              // Discard this answer; its abort error is expected, not a crash.
              outcome.data.body.on('error', () => {});
              outcome.data.body.destroy();
              continue;
            }
            retriesExhausted = retry.config.attempts > 0;
          }
          // Phase 8 — commit: from here on nothing is retried.
          headersSent = true;
          const r = await relay(outcome.data, res, extra, dest.responseHeaders as ((h: OutgoingHttpHeaders) => void) | undefined, () => overallTimedOut);
          responseBytes = r.bytes;
          // The gRPC status of an answer with a body is in its trailers.
          last = { status, grpcStatus: r.grpcStatus, ...(r.failure ? { code: r.failure } : {}) };
          break;
        }
        last = { status: 0, grpcStatus: '', code: outcome.code };
        if (outcome.code === 'DOWNSTREAM_DISCONNECT' || outcome.code === 'UPSTREAM_TIMEOUT' && overallTimedOut) break;
        if (retry && retry.retriable({ kind: 'local', code: outcome.code })) {
          if (moreTries) continue;
          retriesExhausted = retry.config.attempts > 0;
        }
        break;
      }
    } finally {
      if (timer) clearTimeout(timer);
      res.off('close', onClientClose);
    }

    // Phase 9 — answer a failure that left nothing sent, and record telemetry.
    const flagList = [...faultFlags];
    let status = last?.status ?? 0;
    if (last?.code) {
      const err = new MeshError(last.code);
      flagList.push(err.flag);
      if (!headersSent) {
        status = err.status;
        if (last.code !== 'DOWNSTREAM_DISCONNECT') sendError(res, err, extra);
      }
    }
    if (retriesExhausted) flagList.push('URX');
    const requestBytes = replay ? replay.bytesRead : (plain?.bytes() ?? 0);
    const metrics = endpoint?.metrics ?? cluster.unreachedMetrics;
    metrics.record(status, flags(flagList), last?.grpcStatus ?? '', performance.now() - start, requestBytes, responseBytes, requestProtocol(req.headers['content-type']));
    deps.accessLog?.write(req, target, status, flags(flagList), route.config.name, endpoint?.state.key, start);
  };
}

/** One try to one endpoint, with its per-try timeout; the endpoint's in-flight count is kept. */
async function tryOnce(
  endpoint: UpstreamEndpoint,
  method: string,
  path: string,
  headers: Record<string, string | string[]>,
  body: Readable | undefined,
  overall: AbortSignal,
  retry: RetryPolicyConfig | undefined,
  overallTimedOut: () => boolean,
): Promise<TryOutcome> {
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  overall.addEventListener('abort', onAbort, { once: true });
  let perTryTimedOut = false;
  const perTry = retry?.perTryTimeoutMs
    ? setTimeout(() => {
        perTryTimedOut = true;
        ac.abort();
      }, retry.perTryTimeoutMs)
    : undefined;
  endpoint.state.active++;
  try {
    return await tryUpstream({ pool: endpoint.state.pool, method, path, headers, body, signal: ac.signal }, () => perTryTimedOut || overallTimedOut());
  } finally {
    endpoint.state.active--;
    if (perTry) clearTimeout(perTry);
    overall.removeEventListener('abort', onAbort);
  }
}

/** A copy of the request to a mirror cluster; its answer is read and thrown away. */
function mirror(
  cluster: CompiledCluster,
  req: IncomingMessage,
  target: Target,
  headers: Record<string, string | string[]>,
  path: string,
  replay: ReplayableBody | undefined,
  hasBody: boolean,
): void {
  const body = hasBody ? replay?.reader(false) : undefined;
  if (hasBody && !body) return;
  const pick = cluster.balancer.pick({});
  if (pick.kind === 'fail') return;
  const endpoint = cluster.byKey.get(pick.endpoint.key)!;
  const colon = target.authority.lastIndexOf(':');
  const host = colon > 0 ? `${target.authority.slice(0, colon)}-shadow${target.authority.slice(colon)}` : `${target.authority}-shadow`;
  const copy: Record<string, string | string[]> = { ...headers, host };
  delete copy[PEER_HEADER];
  endpoint.state.pool
    .request({ path, method: (req.method ?? 'GET') as 'GET', headers: copy, body })
    .then((r) => r.body.dump())
    .catch(() => {});
}

