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
import type { RetryPolicyConfig, RouteAction, RouteBehaviour, UpstreamProtocol } from '../wire/snapshot.ts';
import type { FallbackTriggerConfig } from '../wire/resilience.ts';
import {
  findVirtualHost,
  type CompiledCluster,
  type CompiledDestination,
  type CompiledRouteEntry,
  type RuntimeConfig,
  type UpstreamEndpoint,
} from './compile.ts';
import { findRouteMatch, type RequestView } from './routing/match.ts';
import { decideFault, GRPC_STATUS_CODES, type FaultDecision } from './routing/fault.ts';
import { redirectLocation } from './routing/rewrite.ts';
import { backoffMs, type CompiledRetryPolicy } from './routing/retry.ts';
import {
  answerWhole,
  clientProtocol,
  firstChunk,
  grpcStatusOf,
  forwardableHeaders,
  hasRequestBody,
  relay,
  requestBody,
  responseHeaders,
  sendError,
  tryFailure,
  tryUpstream,
  type TryOutcome,
} from './forward.ts';
import { ReplayableBody } from './upstream/replay.ts';
import { poolFor } from './upstream/endpoints.ts';
import type { Upstream, UpstreamResponse } from './upstream/upstream.ts';
import type { ClusterState } from './upstream/cluster-state.ts';
import type { Admission, Go, RetryTicket } from './upstream/limits.ts';
import type { OutlierOutcome } from './upstream/outlier.ts';
import { CacheTap, cacheable, FALLBACK_HEADER, triggerOf, type CompiledFallback, type FallbackKind } from './fallback/fallback.ts';
import type { FallbackCache } from './fallback/cache.ts';
import { setCookieValue } from './upstream/lb/hash-cookie.ts';
import { encodePeer, PEER_HEADER, requestProtocol } from './observe/peer.ts';
import type { AccessLog } from './observe/access-log.ts';
import { monotonicMs } from '../core/clock.ts';

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
  return new IncomingView(req, t);
}

/** The request as route matching reads it; its `header` is a method, so no closure is made per request. */
class IncomingView implements RequestView {
  readonly method: string;
  readonly path: string;
  readonly query: string;
  readonly scheme = 'http';
  readonly authority: string;
  readonly port: number;
  private readonly headers: IncomingMessage['headers'];

  constructor(req: IncomingMessage, t: Target) {
    this.method = req.method ?? 'GET';
    this.path = t.path;
    this.query = t.query;
    this.authority = t.authority;
    this.port = t.port;
    this.headers = req.headers;
  }

  header(name: string): string | undefined {
    if (name === ':authority' || name === 'host') return this.authority;
    const v = this.headers[name];
    return Array.isArray(v) ? v.join(',') : v;
  }
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
export function pickEndpoint(cluster: CompiledCluster, key: string | undefined, tried: ReadonlySet<string> | undefined, avoid: boolean): UpstreamEndpoint | ErrorCode {
  let chosen: UpstreamEndpoint | undefined;
  for (let i = 0; i < (avoid && tried && tried.size > 0 ? HOST_SELECTION_ATTEMPTS : 1); i++) {
    const pick = cluster.balancer.pick({ hashKey: key });
    if (pick.kind === 'fail') return pick.code;
    chosen = cluster.byKey.get(pick.endpoint.key)!;
    if (!tried?.has(chosen.state.key)) break;
  }
  return chosen!;
}

/** An answer the proxy makes itself: a CORS preflight, an injected fault, a direct response, a redirect. */
interface LocalAnswer {
  status: number;
  headers: OutgoingHttpHeaders;
  body: string;
  flag: string;
}

/** The answer to an injected abort: its HTTP status, or a gRPC status in a trailers-only answer. */
function faultAnswer(abort: NonNullable<FaultDecision['abort']>, cors: Record<string, string> | undefined, flag: string): LocalAnswer {
  if ('httpStatus' in abort) return { status: abort.httpStatus, headers: { 'content-type': 'text/plain', ...cors }, body: 'fault filter abort', flag };
  const grpcStatus = GRPC_STATUS_CODES[abort.grpcStatus] ?? abort.grpcStatus;
  return { status: 200, headers: { 'content-type': 'application/grpc', 'grpc-status': grpcStatus, 'grpc-message': 'fault filter abort', ...cors }, body: '', flag };
}

/** The answer of a route that is one: a direct response or a redirect (WebSocket upgrades answer with it too). */
export function ownAnswer(action: Exclude<RouteAction, { kind: 'route' }>, t: Target, cors: Record<string, string> | undefined, flag: string): LocalAnswer & { headers: Record<string, string> } {
  if (action.kind === 'directResponse') return { status: action.status, headers: { 'content-type': 'text/plain', ...cors }, body: action.body ?? '', flag };
  const location = redirectLocation(action, { scheme: 'http', authority: t.authority, path: t.path, query: t.query });
  return { status: action.status, headers: { location, ...cors }, body: '', flag };
}

/** Send a local answer with the route's response headers, counted in the metrics of the route's first cluster (none: no-route's). */
function answerLocally(a: LocalAnswer, route: CompiledRouteEntry, res: ServerResponse, rt: RuntimeConfig, start: number): void {
  route.responseHeaders?.(a.headers);
  const bytes = Buffer.byteLength(a.body);
  a.headers['content-length'] = bytes;
  answerWhole(res, a.status, a.headers, a.body);
  const cluster = route.destinations[0]?.cluster;
  (cluster?.unreachedMetrics ?? rt.noRouteMetrics).record(a.status, a.flag, '', monotonicMs() - start, 0, bytes);
}

/** Flags joined as Envoy prints them (`DI,UF`), or `-`. */
function flags(list: string[]): string {
  return list.length === 0 ? '-' : list.join(',');
}

export function outboundHandler(deps: PipelineDeps) {
  return async function handle(req: IncomingMessage, res: ServerResponse, fallbackAuthority?: string): Promise<void> {
    const start = monotonicMs();
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
      rt.noRouteMetrics.record(err.status, err.flag, '', monotonicMs() - start, 0, 0);
      deps.accessLog?.write(req, target, err.status, err.flag, undefined, undefined, start);
      return;
    }
    const route = found.route;
    const action = route.config.action;

    // Phase 2 — CORS: answer a preflight the policy allows; note the headers for the real answer.
    const origin = req.headers.origin;
    let corsHeaders: Record<string, string> | undefined;
    let local: LocalAnswer | undefined;
    if (route.cors && origin !== undefined) {
      const preflightMethod = req.headers['access-control-request-method'];
      if (req.method === 'OPTIONS' && preflightMethod !== undefined) {
        const allowed = route.cors.preflight(origin, preflightMethod);
        if (allowed || (action.cors?.unmatchedPreflights ?? 'FORWARD') === 'IGNORE') local = { status: 200, headers: { ...allowed }, body: '', flag: '-' };
      }
      if (!local) corsHeaders = route.cors.responseHeaders(origin);
    }

    // Phase 3 — fault injection, then the answers the proxy makes itself.
    const flagList: string[] = [];
    if (!local) {
      const fault = action.kind !== 'redirect' ? decideFault(action.fault, deps.random) : undefined;
      if (fault?.delayMs !== undefined) {
        flagList.push('DI');
        const gone = new AbortController();
        const onClose = () => gone.abort();
        res.once('close', onClose);
        await sleep(fault.delayMs, undefined, { signal: gone.signal }).catch(() => {});
        res.off('close', onClose);
        if (gone.signal.aborted) return;
      }
      if (fault?.abort) {
        flagList.push('FI');
        local = faultAnswer(fault.abort, corsHeaders, flags(flagList));
      }
    }
    if (local || action.kind !== 'route') {
      // Without a local answer yet, the action is a direct response or a redirect (the condition says so).
      const answer = local ?? ownAnswer(action as Exclude<RouteAction, { kind: 'route' }>, target, corsHeaders, flags(flagList));
      answerLocally(answer, route, res, rt, start);
      deps.accessLog?.write(req, target, answer.status, answer.flag, route.config.name, undefined, start);
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

    // The body: kept for replay (within a bound) when a retry, a mirror or a fallback may need it again.
    const hasBody = hasRequestBody(req);
    const retry = route.retry;
    const fallback = cluster.fallback;
    const replay = hasBody && (retry || route.mirrors.length > 0 || fallback?.keepsBody) ? new ReplayableBody(req, REPLAY_BUFFER_BYTES) : undefined;
    const plain = replay ? undefined : requestBody(req);

    // Phase 5 — mirrors: fire and forget, never waited for, Host with `-shadow`.
    for (const m of route.mirrors) if (deps.random.next() * 100 < m.percent) mirror(m.cluster, req, target, headers, path, replay, hasBody);

    // Phase 6–7 — pick, admit, try, retry (tryCluster).
    const { key, setCookie } = hashKey(cluster, req, target);
    const extra: OutgoingHttpHeaders | undefined = setCookie || corsHeaders ? { ...(setCookie ? { 'set-cookie': setCookie } : {}), ...corsHeaders } : undefined;
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
    res.on('close', onClientClose);
    const call: UpstreamCall = {
      method: req.method ?? 'GET',
      path,
      headers,
      hasBody,
      body: () => (replay ? (replay.reader(true) ?? null) : plain!.body),
      replayable: () => !hasBody || (replay?.replayable ?? false),
      signal: overall.signal,
      timedOut: () => overallTimedOut,
      peer: encodePeer(rt.snapshot.proxy),
      firstByteTimeoutMs: action.firstByteTimeoutMs,
      clientProtocol: clientProtocol(req),
    };
    let status = 0;
    let grpcStatus = '';
    let responseBytes = 0;
    let answeredBy: UpstreamEndpoint | undefined;
    let fallbackKind: FallbackKind | undefined;
    let tried: Tried | undefined;
    try {
      tried = await tryCluster(cluster, call, retry, key, deps.random);
      if (tried.retryOverflow) flagList.push('UO');

      // Phase 8 — fallback: the failure is one the cluster's FallbackPolicy answers, and nothing was sent yet.
      const trigger = fallback && !res.headersSent ? fallbackTrigger(fallback, tried) : undefined;
      if (fallback && trigger) {
        const fb = await answerFallback(fallback, trigger, { req, target, res, call, replay, extra, dest, route, action, deps });
        if (fb) {
          fallbackKind = fb.kind;
          if (tried.kind === 'answer') discard(tried);
          if (tried.kind === 'failure') flagList.push(new MeshError(tried.code).flag);
          if (fb.failure) flagList.push(new MeshError(fb.failure).flag);
          status = fb.status;
          responseBytes = fb.bytes;
          grpcStatus = fb.grpcStatus;
          answeredBy = fb.endpoint;
          cluster.unreachedMetrics.fallback(fb.kind, trigger);
        }
      }

      // Phase 9 — relay the chosen answer (from here on nothing is retried), or answer the failure.
      if (!fallbackKind && tried.kind === 'answer') {
        answeredBy = tried.endpoint;
        status = tried.data.statusCode;
        const cache = fallback?.cache();
        const tap = cache && cacheable(tried.data, cache.config.maxBytes) ? new CacheTap(cache.config.maxBytes) : undefined;
        const r = await relay(tried.data, res, extra, dest.responseHeaders as ((h: OutgoingHttpHeaders) => void) | undefined, () => overallTimedOut, {
          first: tried.first,
          idleTimeoutMs: action.idleTimeoutMs,
          tap: tap && ((c) => tap.push(c)),
        });
        tried.release(r.failure);
        responseBytes = r.bytes;
        // The gRPC status of an answer with a body is in its trailers.
        grpcStatus = r.grpcStatus;
        if (r.failure) flagList.push(new MeshError(r.failure).flag);
        else if (cache && tap) {
          const answer = tap.answer(tried.data);
          const cacheKey = answer && (await requestKey(cache, req, call, replay));
          if (answer && cacheKey !== undefined) cache.put(cacheKey, answer);
        }
      } else if (!fallbackKind && tried.kind === 'failure') {
        const err = new MeshError(tried.code);
        flagList.push(err.flag);
        status = err.status;
        answeredBy = tried.endpoint;
        if (tried.code !== 'DOWNSTREAM_DISCONNECT') sendError(res, err, extra);
      }
      if (tried.retriesExhausted) flagList.push('URX');
    } finally {
      if (timer) clearTimeout(timer);
      res.off('close', onClientClose);
    }

    // Phase 10 — telemetry.
    const requestBytes = replay ? replay.bytesRead : (plain?.bytes() ?? 0);
    const metrics = answeredBy?.metrics ?? cluster.unreachedMetrics;
    metrics.record(status, flags(flagList), grpcStatus, monotonicMs() - start, requestBytes, responseBytes, requestProtocol(req.headers['content-type']));
    deps.accessLog?.write(req, target, status, flags(flagList), route.config.name, answeredBy?.state.key, start, fallbackKind);
  };
}

/** What the tries of one request need to know, whatever cluster they go to. */
interface UpstreamCall {
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  hasBody: boolean;
  /** The body for a new try; `null` when it no longer fits the replay buffer (no further try). */
  body(): Readable | undefined | null;
  /** Can the body still be sent again from its first byte? */
  replayable(): boolean;
  /** The whole request: its timeout, or the client leaving. */
  signal: AbortSignal;
  timedOut(): boolean;
  /** This proxy's metadata for a Weft sidecar on the other side. */
  peer: string;
  firstByteTimeoutMs?: number;
  /** What the request came in over: what a `useClientProtocol` cluster speaks upstream. */
  clientProtocol: UpstreamProtocol;
}

/** How the tries at one cluster ended. */
type Tried = (
  | {
      kind: 'answer';
      data: UpstreamResponse;
      endpoint: UpstreamEndpoint;
      /** The body's first chunk when the first-byte timeout had it read (null: it ended empty). */
      first?: Buffer | null;
      /**
       * The try is over (answer relayed or discarded): record its outcome for outlier detection —
       * its status, or `cut`, the failure that broke its body (see bodyOutcome) — and give its
       * connection and retry ticket back. Once; later calls do nothing.
       */
      release(cut?: ErrorCode): void;
    }
  | { kind: 'failure'; code: ErrorCode; endpoint?: UpstreamEndpoint }
) & {
  /** Tries ran out on a retriable outcome (flag `URX`). */
  retriesExhausted: boolean;
  /** A retry was skipped because maxRetries or the retry budget was used up (Envoy flags `UO`). */
  retryOverflow: boolean;
};

/**
 * Phases 6–7 at one cluster: pick an endpoint (ejected ones are out), pass the circuit limits
 * (overflow: 503 `UO` at once; all connections busy: wait), try, record the outcome for outlier
 * detection, and retry as the policy says — a retry over `maxRetries` or the retry budget is
 * skipped and the failure that prompted it stands. Ends at an answer's headers (or first byte)
 * or a failure; nothing has been sent downstream yet.
 */
async function tryCluster(cluster: CompiledCluster, call: UpstreamCall, retry: CompiledRetryPolicy | undefined, key: string | undefined, random: Random): Promise<Tried> {
  const maxTries = 1 + (retry?.config.attempts ?? 0);
  // The hosts tried so far, kept only when there can be a retry to keep away from them.
  const tried = maxTries > 1 ? new Set<string>() : undefined;
  const state = cluster.state;
  let ticket: RetryTicket | undefined;
  let retriesExhausted = false;
  let retryOverflow = false;
  let last: Tried | undefined;
  /** May the outcome be retried? Decided before anything is discarded, so a refused retry keeps it. */
  const retryNow = (n: number, retriable: boolean): boolean => {
    if (!retriable) return false;
    if (n + 1 >= maxTries || !call.replayable()) {
      retriesExhausted = (retry?.config.attempts ?? 0) > 0;
      return false;
    }
    const t = state.beginRetry();
    if (t === 'overflow') {
      retryOverflow = true;
      return false;
    }
    ticket = t;
    return true;
  };
  for (let n = 0; n < maxTries; n++) {
    if (n > 0) await sleep(backoffMs(retry!.config, n, random), undefined, { signal: call.signal }).catch(() => {});
    // The ticket of this try (a retry's), given back when the try is over.
    const held = ticket;
    ticket = undefined;
    if (call.signal.aborted) {
      held?.release();
      return failed(call.timedOut() ? 'UPSTREAM_TIMEOUT' : 'DOWNSTREAM_DISCONNECT', last?.endpoint, retriesExhausted, retryOverflow);
    }
    const picked = pickEndpoint(cluster, key, tried, retry?.config.avoidPreviousHosts ?? false);
    if (typeof picked === 'string') {
      held?.release();
      return failed(picked, last?.endpoint, retriesExhausted, retryOverflow);
    }
    const endpoint = picked;
    tried?.add(endpoint.state.key);
    const body = call.body();
    if (body === null) {
      held?.release();
      break; // the body no longer fits the replay buffer: no further try
    }
    // Circuit limits, before every try: overflow answers at once, a full pool waits (only then is there anything to await).
    const a = state.admit();
    const admitted = a.kind === 'go' ? a : a.kind === 'overflow' ? 'overflow' : await queued(a, call.signal);
    if (admitted === 'overflow' || admitted === 'aborted') {
      held?.release();
      body?.destroy();
      return failed(admitted === 'overflow' ? 'OVERFLOW' : call.timedOut() ? 'UPSTREAM_TIMEOUT' : 'DOWNSTREAM_DISCONNECT', endpoint, retriesExhausted, retryOverflow);
    }
    const outcome = await tryOnce(endpoint, call, body, retry?.config);
    // Outlier detection hears of a failure or a discarded answer now, of the answer returned when its body has ended (release).
    if (outcome.kind === 'local') state.record(endpoint.state.key, { kind: 'local', code: outcome.code });
    if (outcome.kind === 'response') {
      const status = outcome.data.statusCode;
      if (retryNow(n, retry?.retriable({ kind: 'response', status, grpcStatus: grpcStatusOf(outcome.data) }) ?? false)) {
        state.record(endpoint.state.key, { kind: 'response', status });
        // Discard this answer; its abort error is expected, not a crash.
        outcome.data.body.on('error', () => {});
        outcome.data.body.destroy();
        outcome.done();
        admitted.release();
        held?.release();
        last = failed('UPSTREAM_RESET', endpoint, retriesExhausted, retryOverflow);
        continue;
      }
      let ended = false;
      return {
        kind: 'answer',
        data: outcome.data,
        endpoint,
        first: outcome.first,
        release: (cut) => {
          if (ended) return;
          ended = true;
          state.record(endpoint.state.key, bodyOutcome(status, cut));
          outcome.done();
          admitted.release();
          held?.release();
        },
        retriesExhausted,
        retryOverflow,
      };
    }
    admitted.release();
    held?.release();
    last = failed(outcome.code, endpoint, retriesExhausted, retryOverflow);
    if (outcome.code === 'DOWNSTREAM_DISCONNECT' || (outcome.code === 'UPSTREAM_TIMEOUT' && call.timedOut())) break;
    if (retryNow(n, retry?.retriable({ kind: 'local', code: outcome.code }) ?? false)) continue;
    break;
  }
  return last ? { ...last, retriesExhausted, retryOverflow } : failed('NO_HEALTHY_UPSTREAM', undefined, retriesExhausted, retryOverflow);
}

/** How tryCluster ended when no answer is kept, with the retry flags as they stand. */
function failed(code: ErrorCode, endpoint: UpstreamEndpoint | undefined, retriesExhausted: boolean, retryOverflow: boolean): Tried {
  return { kind: 'failure', code, endpoint, retriesExhausted, retryOverflow };
}

/**
 * What an answer that was relayed or discarded tells outlier detection: its status — or, when the
 * upstream broke its body (reset, connection cut) or went quiet past `weft.dev/idle-timeout`,
 * that local-origin failure instead (Envoy: router onUpstreamReset and onPerTryIdleTimeout record
 * LocalOriginConnectFailed and LocalOriginTimeout after the headers too). A client that left or
 * the route timeout is not the endpoint's doing: the status stands (Envoy's onResponseTimeout
 * records a timeout only for tries still awaiting headers).
 *
 * Unlike Envoy, which counts the status at the headers (onUpstreamHeaders) and the break on top,
 * the answer counts once, when its body has ended: otherwise every 2xx would restart the run, and
 * an endpoint that breaks every stream after its headers would never reach `consecutive5xxErrors`
 * above 1. The first-byte timeout works the same way (a try whose first byte never came counts as
 * the failure, never as its status).
 */
function bodyOutcome(status: number, cut: ErrorCode | undefined): OutlierOutcome {
  return cut === 'UPSTREAM_RESET' || cut === 'STREAM_IDLE_TIMEOUT' ? { kind: 'local', code: cut } : { kind: 'response', status };
}

/** The circuit limits' decision for one try, waiting (until the request is aborted) when queued; WebSocket upgrades take theirs here too. */
export async function admit(state: ClusterState, signal: AbortSignal): Promise<Go | 'overflow' | 'aborted'> {
  const a = state.admit();
  if (a.kind === 'go') return a;
  if (a.kind === 'overflow') return 'overflow';
  return queued(a, signal);
}

/** Wait for a connection the circuit limits queued the try for, until the request is aborted. */
async function queued(a: Extract<Admission, { kind: 'queue' }>, signal: AbortSignal): Promise<Go | 'aborted'> {
  const onAbort = () => a.cancel();
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  const r = await a.ready;
  signal.removeEventListener('abort', onAbort);
  return r.kind === 'go' ? r : 'aborted';
}

type TryOnce =
  | {
      kind: 'response';
      data: UpstreamResponse;
      first?: Buffer | null;
      /** Unlink the try from the request once its answer is relayed or discarded. */
      done(): void;
    }
  | { kind: 'local'; code: ErrorCode };

/**
 * One try to one endpoint: its per-try timeout (until the answer's headers) and first-byte
 * timeout (until the first byte of its body, which is then held for the relay); the endpoint's
 * in-flight count is kept. The try stays tied to the whole request — its timeout, the client
 * leaving — until `done()`, so they cut a body that is being relayed too.
 */
async function tryOnce(endpoint: UpstreamEndpoint, call: UpstreamCall, body: Readable | undefined, retry: RetryPolicyConfig | undefined): Promise<TryOnce> {
  const headers = call.headers;
  // Set for a Weft sidecar; taken out again only when an earlier try to a sidecar set it (a
  // delete costs an allocation, and the request's own header was never copied: forwardableHeaders).
  if (endpoint.config.sidecar) headers[PEER_HEADER] = call.peer;
  else if (headers[PEER_HEADER] !== undefined) delete headers[PEER_HEADER];
  const pool = poolFor(endpoint.state, call.clientProtocol);
  // Most tries have no timer of their own: the request's signal is theirs, and nothing more is
  // made for them (no AbortController, listener or closure per request on the hot path).
  if (!retry?.perTryTimeoutMs && !call.firstByteTimeoutMs) {
    endpoint.state.active++;
    try {
      return { kind: 'response', data: await pool.request({ path: call.path, method: call.method, headers, body, signal: call.signal }), done: noop };
    } catch (err) {
      return { kind: 'local', code: tryFailure(err, call.signal, call.timedOut()) };
    } finally {
      endpoint.state.active--;
    }
  }
  return tryOnceTimed(endpoint, call, pool, body, retry);
}

/** tryOnce with a per-try or first-byte timeout: an AbortController of the try's own, tied to the request's. */
async function tryOnceTimed(endpoint: UpstreamEndpoint, call: UpstreamCall, pool: Upstream, body: Readable | undefined, retry: RetryPolicyConfig | undefined): Promise<TryOnce> {
  const started = monotonicMs();
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  call.signal.addEventListener('abort', onAbort, { once: true });
  const unlink = () => call.signal.removeEventListener('abort', onAbort);
  let timedOut = false;
  const timeout = (ms: number | undefined) =>
    ms
      ? setTimeout(() => {
          timedOut = true;
          ac.abort();
        }, ms)
      : undefined;
  const perTry = timeout(retry?.perTryTimeoutMs);
  const firstByte = timeout(call.firstByteTimeoutMs);
  endpoint.state.active++;
  let t: TryOutcome;
  try {
    t = await tryUpstream({ pool, method: call.method, path: call.path, headers: call.headers, body, signal: ac.signal }, () => timedOut || call.timedOut());
  } finally {
    endpoint.state.active--;
    if (perTry) clearTimeout(perTry);
    if (firstByte) clearTimeout(firstByte);
  }
  if (t.kind === 'local') {
    unlink();
    return t;
  }
  if (call.firstByteTimeoutMs === undefined) return { kind: 'response', data: t.data, done: unlink };
  // Time to first byte: the answer is held until its body starts, so a silent one can still be retried or fall back.
  const first = t.data.trailersOnly ? null : await firstChunk(t.data.body, call.firstByteTimeoutMs - (monotonicMs() - started));
  if (first === 'timeout' || first === 'error') {
    t.data.body.on('error', () => {});
    t.data.body.destroy();
    unlink();
    const code: ErrorCode = first === 'timeout' || call.timedOut() ? 'UPSTREAM_TIMEOUT' : call.signal.aborted ? 'DOWNSTREAM_DISCONNECT' : 'UPSTREAM_RESET';
    return { kind: 'local', code };
  }
  return { kind: 'response', data: t.data, first, done: unlink };
}

const noop = () => {};

/** Give back what an answer that will not be relayed holds. */
function discard(t: Extract<Tried, { kind: 'answer' }>): void {
  t.data.body.on('error', () => {});
  t.data.body.destroy();
  t.release();
}

/** The trigger of the cluster's FallbackPolicy that this outcome is, if any. */
function fallbackTrigger(f: CompiledFallback<CompiledCluster>, t: Tried): FallbackTriggerConfig | undefined {
  const trigger = t.kind === 'failure' ? triggerOf(t.code) : t.data.statusCode >= 500 ? '5xx' : undefined;
  return trigger && f.on.has(trigger) ? trigger : undefined;
}

/** The fallback cache key of the request, or undefined when its body is too big to key on. */
async function requestKey(cache: FallbackCache, req: IncomingMessage, call: UpstreamCall, replay: ReplayableBody | undefined): Promise<string | undefined> {
  let body: Buffer | undefined;
  if (cache.config.keyBody && call.hasBody) {
    body = replay ? await replay.whole() : undefined;
    if (!body) return undefined;
  }
  return cache.keyOf({ method: call.method, path: call.path, headers: req.headers, body });
}

interface FallbackContext {
  req: IncomingMessage;
  target: Target;
  res: ServerResponse;
  call: UpstreamCall;
  replay: ReplayableBody | undefined;
  extra: OutgoingHttpHeaders | undefined;
  dest: CompiledDestination;
  route: CompiledRouteEntry;
  action: RouteBehaviour;
  deps: PipelineDeps;
}

/**
 * Phase 8 — the FallbackPolicy's parts in order: the cached answer to an equivalent request, one
 * try at the fallback route (an answer below 500 counts), the static response. The first that
 * answers wins, labelled `x-weft-fallback`; undefined when none could.
 */
async function answerFallback(
  f: CompiledFallback<CompiledCluster>,
  trigger: FallbackTriggerConfig,
  c: FallbackContext,
): Promise<{ kind: FallbackKind; status: number; bytes: number; grpcStatus: string; endpoint?: UpstreamEndpoint; failure?: ErrorCode } | undefined> {
  const label = (kind: FallbackKind, h: OutgoingHttpHeaders) => {
    h[FALLBACK_HEADER] = kind;
    if (c.extra) Object.assign(h, c.extra);
    c.dest.responseHeaders?.(h);
    return h;
  };
  const cache = f.cache();
  if (cache) {
    const cacheKey = await requestKey(cache, c.req, c.call, c.replay);
    const hit = cacheKey !== undefined ? cache.get(cacheKey) : undefined;
    if (hit && !c.res.headersSent && !c.res.destroyed) {
      const h = label('cache', { ...responseHeaders(hit.headers as Record<string, string | string[]>), age: String(Math.floor(hit.ageMs / 1000)) });
      h['content-length'] = hit.body.byteLength;
      answerWhole(c.res, hit.status, h, Buffer.from(hit.body));
      return { kind: 'cache', status: hit.status, bytes: hit.body.byteLength, grpcStatus: '' };
    }
  }
  if (f.route && c.call.replayable() && !c.res.destroyed) {
    // One try at the fallback route, with a fresh deadline: the route's timeout, else its per-try timeout.
    const budget = c.action.timeoutMs ?? c.route.retry?.config.perTryTimeoutMs;
    const ac = new AbortController();
    let timedOut = false;
    const timer = budget ? setTimeout(() => ((timedOut = true), ac.abort()), budget) : undefined;
    const onClose = () => ac.abort();
    c.res.once('close', onClose);
    try {
      const call: UpstreamCall = { ...c.call, signal: ac.signal, timedOut: () => timedOut };
      const t = await tryCluster(f.route, call, undefined, hashKey(f.route, c.req, c.target).key, c.deps.random);
      if (t.kind === 'answer' && t.data.statusCode < 500 && !c.res.headersSent) {
        const extra = { ...c.extra, [FALLBACK_HEADER]: 'route' };
        const r = await relay(t.data, c.res, extra, c.dest.responseHeaders as ((h: OutgoingHttpHeaders) => void) | undefined, () => timedOut, {
          first: t.first,
          idleTimeoutMs: c.action.idleTimeoutMs,
        });
        t.release(r.failure);
        return { kind: 'route', status: t.data.statusCode, bytes: r.bytes, grpcStatus: r.grpcStatus, endpoint: t.endpoint, failure: r.failure };
      }
      if (t.kind === 'answer') discard(t);
    } finally {
      if (timer) clearTimeout(timer);
      c.res.off('close', onClose);
    }
  }
  const r = f.response;
  if (r && !c.res.headersSent && !c.res.destroyed) {
    const h = label('static', { ...r.headers, 'content-length': r.body.byteLength });
    answerWhole(c.res, r.status, h, r.body);
    return { kind: 'static', status: r.status, bytes: r.body.byteLength, grpcStatus: '' };
  }
  return undefined;
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
  poolFor(endpoint.state, clientProtocol(req))
    .request({ path, method: (req.method ?? 'GET') as 'GET', headers: copy, body })
    .then((r) => r.body.dump())
    .catch(() => {});
}

