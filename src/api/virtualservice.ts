// VirtualService (networking.istio.io v1, v1beta1, v1alpha3): schema and Istio's validation rules.
import type { HTTPMatchRequest, HTTPRoute, HTTPRouteDestination, Headers, VirtualServiceSpec } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { bool, duration, enumOf, int, listOf, mapOf, obj, str, uint32, type Schema } from './schema.ts';
import { destination, labelsMap, percent, stringList, stringMatch } from './common.ts';
import {
  checkDestination,
  checkExportTo,
  checkGatewayNames,
  checkPercentage,
  checkPortAt,
  checkRegexAt,
  checkStringMatch,
  checkSubnets,
  entries,
  items,
  type RuleContext,
} from './rules.ts';
import {
  checkHeaderOperationName,
  checkHeaderValue,
  checkMatchHeaderName,
  checkRequestHeaderOperationName,
  checkTokenHeaderName,
  checkWildcardDomain,
  isAuthorityHeader,
  isDNS1123Label,
  isJwtClaimHeader,
} from './names.ts';
import { isIPAddress } from './net.ts';
import { hostCoveredBy, hostsOverlap } from './hosts.ts';
import { parseDurationNanos } from '../core/duration.ts';
import { checkStreamingTimeouts } from './annotations.ts';

// ---- schema ----------------------------------------------------------------------------------

const headerOperations = obj({ set: mapOf(str()), add: mapOf(str()), remove: stringList() });
const headers = obj({ request: headerOperations, response: headerOperations });

const matchRequest = obj({
  name: str(),
  uri: stringMatch(),
  scheme: stringMatch(),
  method: stringMatch(),
  authority: stringMatch(),
  headers: mapOf(stringMatch()),
  withoutHeaders: mapOf(stringMatch()),
  queryParams: mapOf(stringMatch()),
  port: uint32(),
  sourceLabels: labelsMap(),
  sourceNamespace: str(),
  gateways: stringList(),
  ignoreUriCase: bool(),
  statPrefix: str(),
});

// Weights are relative; Istio only requires them to be non-negative int32.
const weight = int({ min: 0 });

const httpRouteDestination = obj({ destination: destination(), weight, headers }, { required: ['destination'] });

const redirect = obj(
  {
    uri: str(),
    authority: str(),
    port: uint32(),
    derivePort: enumOf(['FROM_PROTOCOL_DEFAULT', 'FROM_REQUEST_PORT']),
    scheme: str(),
    redirectCode: uint32(),
    prefixRewrite: str(),
  },
  { oneOf: [['port', 'derivePort']] },
);

// Istio checks the status against 200..600 (its message says 599, its code allows 600).
const httpStatus = (what: string) =>
  uint32({ rule: (s) => (s < 200 || s > 600 ? `${what} ${s} is not in range 200-600` : undefined) });

const directResponse = obj(
  {
    status: httpStatus('HTTP status'),
    body: obj(
      { string: str(), bytes: str({ rule: (b) => (/^[A-Za-z0-9+/]*={0,2}$/.test(b) ? undefined : 'must be base64-encoded') }) },
      { oneOf: [['string', 'bytes']] },
    ),
  },
  { required: ['status'] },
);

const rewrite = obj({ uri: str(), authority: str(), uriRegexRewrite: obj({ match: str(), rewrite: str() }) });

const retries = obj({
  attempts: int(),
  perTryTimeout: duration(),
  retryOn: str(),
  retryRemoteLocalities: bool(),
  retryIgnorePreviousHosts: bool(),
  backoff: duration(),
});

const fault = obj({
  delay: obj(
    { fixedDelay: duration(), exponentialDelay: duration(), percentage: percent(), percent: int() },
    { oneOf: [['fixedDelay', 'exponentialDelay']], deprecated: { percent: 'use "percentage"' } },
  ),
  abort: obj(
    { httpStatus: int(), grpcStatus: str(), http2Error: str(), percentage: percent() },
    { oneOf: [['httpStatus', 'grpcStatus', 'http2Error']] },
  ),
});

const corsPolicy = obj(
  {
    allowOrigin: stringList(),
    allowOrigins: listOf(stringMatch()),
    allowMethods: stringList(),
    allowHeaders: stringList(),
    exposeHeaders: stringList(),
    maxAge: duration(),
    allowCredentials: bool(),
    unmatchedPreflights: enumOf(['UNSPECIFIED', 'FORWARD', 'IGNORE']),
  },
  { deprecated: { allowOrigin: 'use "allowOrigins"' } },
);

const httpRoute = obj(
  {
    name: str(),
    match: listOf(matchRequest),
    route: listOf(httpRouteDestination),
    redirect,
    directResponse,
    delegate: obj({ name: str(), namespace: str() }),
    rewrite,
    timeout: duration(),
    retries,
    fault,
    mirror: destination(),
    mirrors: listOf(obj({ destination: destination(), percentage: percent() }, { required: ['destination'] })),
    mirrorPercent: uint32(),
    mirrorPercentage: percent(),
    corsPolicy,
    headers,
  },
  { deprecated: { mirrorPercent: 'use "mirrorPercentage"' } },
);

const l4Destination = obj({ destination: destination(), weight }, { required: ['destination'] });

const tlsRoute = obj(
  {
    match: listOf(
      obj(
        {
          sniHosts: stringList(),
          destinationSubnets: stringList(),
          port: uint32(),
          sourceLabels: labelsMap(),
          gateways: stringList(),
          sourceNamespace: str(),
        },
        { required: ['sniHosts'] },
      ),
    ),
    route: listOf(l4Destination),
  },
  { required: ['match'] },
);

const tcpRoute = obj({
  match: listOf(
    obj({
      destinationSubnets: stringList(),
      port: uint32(),
      sourceSubnet: str(),
      sourceLabels: labelsMap(),
      gateways: stringList(),
      sourceNamespace: str(),
    }),
  ),
  route: listOf(l4Destination),
});

const spec: Schema<Record<string, unknown>> = obj({
  hosts: stringList(),
  gateways: stringList(),
  http: listOf(httpRoute),
  tls: listOf(tlsRoute),
  tcp: listOf(tcpRoute),
  exportTo: stringList(),
});

// ---- rules -----------------------------------------------------------------------------------

// Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on policies.
const RETRY_ON_POLICIES = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'retriable-4xx', 'refused-stream',
  'retriable-status-codes', 'retriable-headers', 'envoy-ratelimited', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

// HTTP status codes with a registered meaning (Istio accepts these as retryOn entries).
const KNOWN_STATUS_CODES = new Set([
  100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
  400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423,
  424, 425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

const GRPC_STATUS = new Set([
  'OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS',
  'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED',
  'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED',
]);

const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);

const KB = 1024;
const MB = 1024 * KB;

function checkHeaderOperations(ctx: RuleContext, path: string, h: Headers | undefined): void {
  const req = h?.request;
  const res = h?.response;
  const base = joinPath(path, 'headers');
  for (const [op, ops] of [['set', req?.set], ['add', req?.add]] as const) {
    for (const [name, value, p] of entries(ops, joinPath(joinPath(base, 'request'), op))) {
      const problem = checkRequestHeaderOperationName(name) ?? checkHeaderValue(value);
      if (problem) ctx.error(p, problem);
    }
  }
  for (const [name, p] of items(req?.remove, joinPath(joinPath(base, 'request'), 'remove'))) {
    const problem = checkHeaderOperationName(name);
    if (problem) ctx.error(p, problem);
  }
  for (const [op, ops] of [['set', res?.set], ['add', res?.add]] as const) {
    for (const [name, value, p] of entries(ops, joinPath(joinPath(base, 'response'), op))) {
      const problem = checkHeaderOperationName(name) ?? checkHeaderValue(value);
      if (problem) ctx.error(p, problem);
    }
  }
  for (const [name, p] of items(res?.remove, joinPath(joinPath(base, 'response'), 'remove'))) {
    const problem = checkHeaderOperationName(name);
    if (problem) ctx.error(p, problem);
  }
}

function checkMatch(ctx: RuleContext, path: string, m: HTTPMatchRequest, appliesToGateway: boolean): void {
  for (const field of ['headers', 'withoutHeaders'] as const) {
    for (const [name, match, p] of entries(m[field], joinPath(path, field))) {
      const problem = checkMatchHeaderName(name);
      if (problem) ctx.error(p, problem);
      if (isJwtClaimHeader(name) && !appliesToGateway) {
        ctx.error(p, `JWT claim based routing (${name}) is only supported for gateways; this VirtualService applies to the mesh`);
      }
      // In withoutHeaders, `regex: "*"` is Istio's spelling of "header absent", not a regex.
      if (field === 'withoutHeaders' && 'regex' in match && match.regex === '*') continue;
      checkStringMatch(ctx, p, match, false);
    }
  }
  checkStringMatch(ctx, joinPath(path, 'uri'), m.uri, true);
  for (const field of ['scheme', 'method', 'authority'] as const) checkStringMatch(ctx, joinPath(path, field), m[field], false);
  for (const [, match, p] of entries(m.queryParams, joinPath(path, 'queryParams'))) checkStringMatch(ctx, p, match, false);
  checkPortAt(ctx, joinPath(path, 'port'), m.port);
  checkGatewayNames(ctx, joinPath(path, 'gateways'), m.gateways);
  if (m.sourceNamespace !== undefined && m.sourceNamespace !== '' && !isDNS1123Label(m.sourceNamespace)) {
    ctx.error(joinPath(path, 'sourceNamespace'), `sourceNamespace match ${m.sourceNamespace} is invalid`);
  }
}

/** What makes a route an HTTP route: exactly one of route, redirect, directResponse (or delegate). */
function checkConflicts(ctx: RuleContext, path: string, r: HTTPRoute, inDelegate: boolean): void {
  const at = (field: string) => joinPath(path, field);
  const hasRoute = (r.route?.length ?? 0) > 0;
  if (r.delegate && !inDelegate) {
    // A root route hands the request to the delegate VirtualService; it cannot also route it.
    if (r.redirect) ctx.error(at('redirect'), 'a route with "delegate" must not also set "redirect"', Codes.CONFLICT);
    if (r.route) ctx.error(at('route'), 'a route with "delegate" must not also set "route"', Codes.CONFLICT);
    return;
  }
  if (inDelegate && r.delegate) ctx.error(at('delegate'), 'a delegate VirtualService cannot delegate again', Codes.CONFLICT);
  if (r.redirect) {
    if (hasRoute) ctx.error(at('redirect'), 'an HTTP route cannot have both "route" and "redirect"', Codes.CONFLICT);
    if (r.fault) ctx.error(at('fault'), 'an HTTP route cannot have both "fault" and "redirect"', Codes.CONFLICT);
    if (r.rewrite) ctx.error(at('rewrite'), 'an HTTP route cannot have both "rewrite" and "redirect"', Codes.CONFLICT);
    if (r.directResponse) ctx.error(at('directResponse'), 'an HTTP route cannot have both "directResponse" and "redirect"', Codes.CONFLICT);
  } else if (r.directResponse) {
    if (hasRoute) ctx.error(at('directResponse'), 'an HTTP route cannot have both "route" and "directResponse"', Codes.CONFLICT);
    if (r.fault) ctx.error(at('fault'), 'an HTTP route cannot have both "fault" and "directResponse"', Codes.CONFLICT);
    if (r.rewrite) ctx.error(at('rewrite'), 'an HTTP route cannot have both "rewrite" and "directResponse"', Codes.CONFLICT);
  } else if (!hasRoute) {
    ctx.error(path, 'an HTTP route needs one of "route", "redirect", "directResponse" or "delegate"', Codes.REQUIRED);
  }
  if (r.mirror && (r.mirrors?.length ?? 0) > 0) ctx.error(at('mirrors'), 'an HTTP route cannot have both "mirror" and "mirrors"', Codes.CONFLICT);
}

function checkRetries(ctx: RuleContext, path: string, retries: NonNullable<HTTPRoute['retries']>): void {
  const attempts = retries.attempts ?? 0;
  if (attempts < 0) ctx.error(joinPath(path, 'attempts'), 'attempts cannot be negative');
  if (attempts === 0 && (retries.perTryTimeout !== undefined || retries.retryOn !== undefined || retries.retryRemoteLocalities !== undefined)) {
    ctx.error(joinPath(path, 'attempts'), 'retry policy configured but attempts is 0 (retries disabled); set attempts or remove the other retry fields');
  }
  if (retries.retryOn !== undefined && retries.retryOn !== '') {
    for (const policy of retries.retryOn.split(',')) {
      const code = /^\d+$/.test(policy) ? Number(policy) : NaN;
      if (!KNOWN_STATUS_CODES.has(code) && !RETRY_ON_POLICIES.has(policy)) {
        ctx.error(joinPath(path, 'retryOn'), `${JSON.stringify(policy)} is not a valid retryOn policy (use Envoy's retry-on names such as 5xx, connect-failure, refused-stream, or HTTP status codes)`);
      }
    }
  }
}

function checkFault(ctx: RuleContext, path: string, f: Record<string, any>): void {
  if (!f.abort && !f.delay) ctx.error(path, 'HTTP fault injection must have an abort and/or a delay', Codes.REQUIRED);
  if (f.abort) {
    const p = joinPath(path, 'abort');
    checkPercentage(ctx, joinPath(p, 'percentage'), f.abort.percentage);
    if (f.abort.grpcStatus !== undefined && !GRPC_STATUS.has(f.abort.grpcStatus)) {
      ctx.error(joinPath(p, 'grpcStatus'), `gRPC status ${JSON.stringify(f.abort.grpcStatus)} is not supported; use a code name such as NOT_FOUND or UNAVAILABLE`);
    } else if (f.abort.http2Error !== undefined) {
      ctx.error(joinPath(p, 'http2Error'), 'HTTP/2 abort fault injection is not supported by Istio yet');
    } else if (f.abort.httpStatus !== undefined) {
      if (f.abort.httpStatus < 200 || f.abort.httpStatus > 600) ctx.error(joinPath(p, 'httpStatus'), `HTTP status ${f.abort.httpStatus} is not in range 200-600`);
    } else if (f.abort.grpcStatus === undefined) {
      ctx.warn(p, Codes.SUSPICIOUS, 'abort configured, but no httpStatus or grpcStatus set');
    }
  }
  if (f.delay) {
    const p = joinPath(path, 'delay');
    checkPercentage(ctx, joinPath(p, 'percentage'), f.delay.percentage);
    if (f.delay.exponentialDelay !== undefined) ctx.error(joinPath(p, 'exponentialDelay'), 'exponentialDelay is not supported by Istio yet');
  }
}

function checkCors(ctx: RuleContext, path: string, c: Record<string, any>): void {
  for (const [origin, p] of items<Record<string, string>>(c.allowOrigins, joinPath(path, 'allowOrigins'))) {
    const value = origin.exact ?? origin.prefix ?? origin.regex;
    if (!value) ctx.error(p, 'allowOrigins entries need a non-empty exact, prefix or regex');
    else if (origin.regex !== undefined) checkRegexAt(ctx, joinPath(p, 'regex'), origin.regex);
  }
  for (const [method, p] of items<string>(c.allowMethods, joinPath(path, 'allowMethods'))) {
    if (!CORS_METHODS.has(method)) ctx.error(p, `${JSON.stringify(method)} is not a supported HTTP method`);
  }
  for (const field of ['allowHeaders', 'exposeHeaders']) {
    for (const [name, p] of items<string>(c[field], joinPath(path, field))) {
      const problem = checkTokenHeaderName(name);
      if (problem) ctx.error(p, problem);
    }
  }
  if (c.maxAge !== undefined && (parseDurationNanos(c.maxAge) ?? 0n) % 1_000_000_000n !== 0n) {
    ctx.error(joinPath(path, 'maxAge'), 'max_age duration is accurate only to seconds precision');
  }
}

function checkRedirect(ctx: RuleContext, path: string, r: Record<string, any>, matches: HTTPMatchRequest[] | undefined): void {
  if (r.uri && r.prefixRewrite) ctx.error(joinPath(path, 'prefixRewrite'), 'redirect may only specify one of uri or prefixRewrite', Codes.CONFLICT);
  if (r.prefixRewrite) {
    for (const m of matches ?? []) {
      if (m?.uri && !('prefix' in m.uri)) {
        ctx.error(joinPath(path, 'prefixRewrite'), 'redirect prefixRewrite requires all URI matches to use prefix match type');
        break;
      }
    }
  }
  if (!r.uri && !r.prefixRewrite && !r.authority && r.port === undefined && r.derivePort === undefined && !r.scheme) {
    ctx.error(path, 'redirect must specify URI, authority, scheme, or port', Codes.REQUIRED);
  }
  if (r.redirectCode !== undefined && r.redirectCode !== 0 && (r.redirectCode < 300 || r.redirectCode > 399)) {
    ctx.error(joinPath(path, 'redirectCode'), `${r.redirectCode} is not a valid redirect code, must be 3xx`);
  }
  if (r.scheme && r.scheme !== 'http' && r.scheme !== 'https') ctx.error(joinPath(path, 'scheme'), 'invalid redirect scheme, must be "http" or "https"');
  checkPortAt(ctx, joinPath(path, 'port'), r.port);
}

function checkRewrite(ctx: RuleContext, path: string, r: Record<string, any>): void {
  if (r.uri && r.uriRegexRewrite) ctx.error(joinPath(path, 'uriRegexRewrite'), 'rewrite may only contain one of uri or uriRegexRewrite', Codes.CONFLICT);
  if (!r.uri && !r.uriRegexRewrite && !r.authority) ctx.error(path, 'rewrite must specify at least one of uri, uriRegexRewrite or authority', Codes.REQUIRED);
  const rr = r.uriRegexRewrite;
  if (rr) {
    if (!rr.match || !rr.rewrite) ctx.error(joinPath(path, 'uriRegexRewrite'), 'uriRegexRewrite requires both match and rewrite', Codes.REQUIRED);
    else checkRegexAt(ctx, joinPath(joinPath(path, 'uriRegexRewrite'), 'match'), rr.match);
  }
}

/** The authority may be rewritten in one place only: rewrite.authority or one request header. */
function checkAuthorityRewrite(ctx: RuleContext, routePath: string, r: HTTPRoute): void {
  let current: string | undefined = r.rewrite?.authority || undefined;
  for (const op of ['set', 'add'] as const) {
    for (const [name, value, p] of entries(r.headers?.request?.[op], `${routePath}.headers.request.${op}`)) {
      if (!isAuthorityHeader(name)) continue;
      if (current !== undefined) ctx.error(p, `authority header cannot be set multiple times: have ${JSON.stringify(current)}, attempting to set ${JSON.stringify(value)}`, Codes.CONFLICT);
      current = value;
    }
  }
}

function checkRouteDestinations(ctx: RuleContext, path: string, dests: ReadonlyArray<HTTPRouteDestination | undefined> | undefined, http: boolean): void {
  if (!dests) return;
  let total = 0;
  for (const [d, p] of items(dests, path)) {
    checkDestination(ctx, joinPath(p, 'destination'), d.destination);
    if (http) checkHeaderOperations(ctx, p, d.headers);
    total += d.weight ?? 0;
  }
  // Weights are relative (w / Σw); a lone destination gets everything whatever its weight.
  if (dests.length > 1 && total === 0) {
    ctx.error(path, 'total destination weight is 0: give at least one destination a weight above 0');
  }
}

function checkHTTPRoute(ctx: RuleContext, path: string, r: HTTPRoute, inDelegate: boolean, appliesToGateway: boolean): void {
  checkConflicts(ctx, path, r, inDelegate);
  for (const [m, p] of items(r.match, joinPath(path, 'match'))) checkMatch(ctx, p, m, appliesToGateway);
  checkHeaderOperations(ctx, path, r.headers);
  if (r.corsPolicy) checkCors(ctx, joinPath(path, 'corsPolicy'), r.corsPolicy);
  if (r.fault) checkFault(ctx, joinPath(path, 'fault'), r.fault);
  const legacy = (r as { mirrorPercent?: number }).mirrorPercent;
  if (legacy !== undefined && legacy > 100) ctx.error(joinPath(path, 'mirrorPercent'), `mirrorPercent must have a max value of 100 (it has ${legacy})`);
  const mp = r.mirrorPercentage?.value;
  if (mp !== undefined && (mp < 0 || mp > 100)) ctx.error(joinPath(joinPath(path, 'mirrorPercentage'), 'value'), `mirrorPercentage must be between 0 and 100 (it has ${mp})`);
  checkDestination(ctx, joinPath(path, 'mirror'), r.mirror);
  for (const [m, p] of items(r.mirrors, joinPath(path, 'mirrors'))) {
    checkDestination(ctx, joinPath(p, 'destination'), m.destination);
    const v = m.percentage?.value;
    if (v !== undefined && (v < 0 || v > 100)) ctx.error(joinPath(joinPath(p, 'percentage'), 'value'), `mirror percentage must be between 0 and 100 (it has ${v})`);
  }
  if (r.redirect) checkRedirect(ctx, joinPath(path, 'redirect'), r.redirect, r.match);
  if (r.directResponse?.body) {
    const body = r.directResponse.body;
    const size = body.string !== undefined ? Buffer.byteLength(body.string) : body.bytes !== undefined ? Math.floor((body.bytes.length * 3) / 4) : 0;
    if (size > MB) ctx.error(`${path}.directResponse.body`, 'direct response bodies must be less than 1MB');
    else if (size > 100 * KB) ctx.warn(`${path}.directResponse.body`, Codes.SUSPICIOUS, 'large direct response bodies may impact control plane performance');
  }
  if (r.retries) checkRetries(ctx, joinPath(path, 'retries'), r.retries);
  if (r.rewrite) checkRewrite(ctx, joinPath(path, 'rewrite'), r.rewrite);
  checkAuthorityRewrite(ctx, path, r);
  checkRouteDestinations(ctx, joinPath(path, 'route'), r.route, true);
}

interface L4Match {
  sniHosts?: string[];
  destinationSubnets?: string[];
  port?: number;
  gateways?: string[];
}

function checkL4Route(ctx: RuleContext, path: string, route: { match?: L4Match[]; route?: HTTPRouteDestination[] }, tls: boolean, vs: VirtualServiceSpec, appliesToGateway: boolean): void {
  if (tls && (route.match?.length ?? 0) === 0) ctx.error(joinPath(path, 'match'), 'TLS route must have at least one match condition', Codes.REQUIRED);
  for (const [m, p] of items(route.match, joinPath(path, 'match'))) {
    if (tls) {
      if ((m.sniHosts?.length ?? 0) === 0) ctx.error(joinPath(p, 'sniHosts'), 'TLS match must have at least one SNI host', Codes.REQUIRED);
      for (const [sni, sp] of items(m.sniHosts, joinPath(p, 'sniHosts'))) checkSniHost(ctx, sp, sni, vs, appliesToGateway);
    }
    checkSubnets(ctx, joinPath(p, 'destinationSubnets'), m.destinationSubnets);
    checkPortAt(ctx, joinPath(p, 'port'), m.port);
    checkGatewayNames(ctx, joinPath(p, 'gateways'), m.gateways);
  }
  if ((route.route?.length ?? 0) === 0) ctx.error(joinPath(path, 'route'), `${tls ? 'TLS' : 'TCP'} route is required`, Codes.REQUIRED);
  checkRouteDestinations(ctx, joinPath(path, 'route'), route.route, false);
}

function checkSniHost(ctx: RuleContext, path: string, sni: string, vs: VirtualServiceSpec, appliesToGateway: boolean): void {
  // Gateways may match Istio's auto-generated SNI names (outbound_.80_._.host).
  if (appliesToGateway && sni.startsWith('outbound_')) return;
  const problem = checkWildcardDomain(sni);
  if (problem) {
    if (isIPAddress(sni)) ctx.warn(path, Codes.SUSPICIOUS, `using an IP address (${JSON.stringify(sni)}) goes against the SNI spec and most clients do not support it`);
    else ctx.error(path, problem);
    return;
  }
  if (!(vs.hosts ?? []).some((h) => h && hostCoveredBy(sni, h))) {
    ctx.error(path, `SNI host ${JSON.stringify(sni)} is not a compatible subset of any of the virtual service hosts: [${(vs.hosts ?? []).join(', ')}]`);
  }
}

/** A match item that constrains nothing (only a name) matches every request. */
function matchesEverything(route: HTTPRoute): boolean {
  if (!route.match || route.match.length === 0) return true;
  return route.match.some((m) => m && Object.keys(m).every((k) => k === 'name'));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
}

/** Istio warns about routes after a catch-all route, and match conditions repeated verbatim. */
function checkReachability(ctx: RuleContext, http: ReadonlyArray<HTTPRoute | undefined>): void {
  let catchAll: string | undefined;
  const seenMatches = new Map<string, string>();
  for (const [route, p] of items(http, 'spec.http')) {
    if (catchAll !== undefined) {
      ctx.warn(p, Codes.UNREACHABLE_ROUTE, `this route is never used: ${catchAll} before it matches every request`);
      continue;
    }
    for (const [m, mp] of items(route.match, joinPath(p, 'match'))) {
      const { name: _name, ...conditions } = m;
      const key = canonical(conditions);
      const earlier = seenMatches.get(key);
      if (earlier !== undefined && Object.keys(conditions).length > 0) {
        ctx.warn(mp, Codes.UNREACHABLE_ROUTE, `this match is never used: ${earlier} has the same conditions`);
      } else {
        seenMatches.set(key, mp);
      }
    }
    if (matchesEverything(route)) catchAll = p;
  }
}

function rules(spec: VirtualServiceSpec, ctx: RuleContext): void {
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const inDelegate = hosts.length === 0;
  if (inDelegate) {
    // Without hosts this is a delegate VirtualService, only reachable through another one's
    // `delegate`; Istio then forbids what only makes sense on a root.
    if (gateways.length) ctx.error('spec.gateways', 'a delegate VirtualService (one without hosts) must not set gateways');
    if (spec.tls?.length) ctx.error('spec.tls', 'a delegate VirtualService (one without hosts) must not have tls routes');
    if (spec.tcp?.length) ctx.error('spec.tcp', 'a delegate VirtualService (one without hosts) must not have tcp routes');
  }
  checkGatewayNames(ctx, 'spec.gateways', gateways);
  // Omitted gateways mean the mesh; listing gateways without "mesh" binds only to those gateways.
  const appliesToGateway = gateways.length > 0 && !gateways.includes('mesh');
  const appliesToMesh = !appliesToGateway;
  const sni = (spec.tls ?? []).some((t) => (t as { match?: L4Match[] } | undefined)?.match?.some((m) => (m?.sniHosts?.length ?? 0) > 0));

  let allHostsValid = true;
  for (const [host, p] of items(hosts, 'spec.hosts')) {
    const problem = appliesToGateway && sni && host.startsWith('outbound_') ? undefined : checkWildcardDomain(host);
    if (problem) {
      if (!isIPAddress(host)) {
        ctx.error(p, problem);
        allHostsValid = false;
      }
    } else if (appliesToMesh && host === '*') {
      ctx.error(p, 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allHostsValid = false;
    }
  }
  if (allHostsValid) {
    for (let i = 0; i < hosts.length; i++) {
      for (let j = i + 1; j < hosts.length; j++) {
        const a = hosts[i];
        const b = hosts[j];
        if (a && b && hostsOverlap(a, b)) ctx.error(`spec.hosts[${j}]`, `duplicate hosts in virtual service: ${a} & ${b}`, Codes.DUPLICATE);
      }
    }
  }

  if (!spec.http?.length && !spec.tcp?.length && !spec.tls?.length) {
    ctx.error('spec', 'a VirtualService needs http, tcp or tls routes', Codes.REQUIRED);
  }
  for (const [route, p] of items(spec.http, 'spec.http')) checkHTTPRoute(ctx, p, route, inDelegate, appliesToGateway);
  for (const [route, p] of items(spec.tls as Array<{ match?: L4Match[]; route?: HTTPRouteDestination[] } | undefined>, 'spec.tls')) {
    checkL4Route(ctx, p, route, true, spec, appliesToGateway);
  }
  for (const [route, p] of items(spec.tcp as Array<{ match?: L4Match[]; route?: HTTPRouteDestination[] } | undefined>, 'spec.tcp')) {
    checkL4Route(ctx, p, route, false, spec, appliesToGateway);
  }
  checkExportTo(ctx, 'spec.exportTo', spec.exportTo);
  checkReachability(ctx, spec.http ?? []);
  checkStreamingTimeouts(ctx, new Set((spec.http ?? []).flatMap((r) => (r?.name ? [r.name] : []))));
}

/**
 * HTTP header names are case-insensitive and Weft's proxy sees them lowercased (as Envoy does), so
 * match keys are normalised to lowercase. JWT claim keys keep their case: claims are case-sensitive.
 */
function finish(spec: VirtualServiceSpec, ctx: RuleContext): VirtualServiceSpec {
  for (const [route, p] of items(spec.http, 'spec.http')) {
    for (const [m, mp] of items(route.match, joinPath(p, 'match'))) {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        const before = m[field];
        if (!before) continue;
        const after: Record<string, (typeof before)[string]> = {};
        for (const [name, match] of Object.entries(before)) {
          const key = isJwtClaimHeader(name) ? name : name.toLowerCase();
          if (Object.hasOwn(after, key)) {
            ctx.error(joinPath(joinPath(mp, field), name), `header ${JSON.stringify(name)} is listed twice (header names are case-insensitive)`, Codes.DUPLICATE);
          }
          after[key] = match;
        }
        m[field] = after;
      }
    }
  }
  return spec;
}

export const virtualService: KindDef<VirtualServiceSpec> = {
  group: 'networking.istio.io',
  kind: 'VirtualService',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  origin: 'Istio',
  protoNames: true,
  spec,
  rules,
  finish,
};
