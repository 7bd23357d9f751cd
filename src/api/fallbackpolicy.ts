// FallbackPolicy (weft.dev/v1alpha1): what a caller gets when a service's real answer cannot be had — a cached answer, another destination, or a static response, each labelled.
//
// ```yaml
// apiVersion: weft.dev/v1alpha1
// kind: FallbackPolicy
// metadata: {name: sentiment-model, namespace: default}
// spec:
//   host: sentiment-model        # the service it protects (required)
//   subset: v2                   # optional: only traffic routed to this subset
//   on: [unavailable, overflow, timeout]   # the default; "5xx" is opt-in
//   cache: {ttl: 10m, maxEntries: 10000, maxBytes: 16777216, key: {headers: [x-user-id], body: true}}
//   route: {host: sentiment-model, subset: v1}
//   response: {status: 200, headers: {content-type: application/json}, body: '{"label":"neutral"}'}
// ```
//
// The parts present are tried in that order (cache, route, response). Every fallback answer
// carries `x-weft-fallback: cache|route|static`. Istio's resources are not changed by it; without
// a FallbackPolicy, behaviour is exactly Istio's.
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { bool, duration, enumOf, int, listOf, mapOf, obj, str, type Schema } from './schema.ts';
import { items, type RuleContext } from './rules.ts';
import { checkFQDN, isDNS1123Label } from './names.ts';

/**
 * When the fallback is used:
 * - `unavailable`: no healthy endpoint (all ejected, none ready), or the connection failed (503 `UH`/`UF`);
 * - `overflow`: the circuit limits refused the request (503 `UO`);
 * - `timeout`: the route's timeout passed before the answer's headers (504 `UT`);
 * - `5xx`: the upstream answered with a 5xx (opt-in: that answer is the model's own).
 * Never after the first byte of an answer has gone to the caller.
 */
export type FallbackTrigger = 'unavailable' | 'overflow' | 'timeout' | '5xx';

export const FALLBACK_TRIGGERS: readonly FallbackTrigger[] = ['unavailable', 'overflow', 'timeout', '5xx'];
export const DEFAULT_FALLBACK_TRIGGERS: readonly FallbackTrigger[] = ['unavailable', 'overflow', 'timeout'];

/** 1st: the last good answer to an equivalent request. Unset fields get the proxy's defaults (5m, 1000 entries, 16 MiB, body keyed). */
export interface FallbackCacheSpec {
  ttl?: string;
  maxEntries?: number;
  maxBytes?: number;
  /** Method and path are always part of the key; these header values (lowercase names) and, unless `body: false`, a hash of the body too. */
  key?: { headers?: string[]; body?: boolean };
}

/** 2nd: another destination (a smaller model, the previous version). */
export interface FallbackRouteSpec {
  host: string;
  subset?: string;
}

/** 3rd: a static answer (a fallback prediction). */
export interface FallbackResponseSpec {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The spec as loaded: defaults filled (`on`, the response's status/headers/body, lowercase key headers). */
export interface FallbackPolicySpec {
  host: string;
  subset?: string;
  on: FallbackTrigger[];
  cache?: FallbackCacheSpec;
  route?: FallbackRouteSpec;
  response?: FallbackResponseSpec;
}

// ---- schema ----------------------------------------------------------------------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const checkHeaderName = (name: string): string | undefined => (TOKEN.test(name) ? undefined : `${JSON.stringify(name)} is not a valid header name`);

/** Set by the proxy itself, so a static answer may not choose them. */
const PROXY_HEADERS = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-connection', 'x-weft-fallback']);

const spec: Schema<Record<string, unknown>> = obj(
  {
    host: str({ minLength: 1 }),
    subset: str({ minLength: 1 }),
    on: listOf(enumOf(FALLBACK_TRIGGERS), { minItems: 1 }),
    cache: obj({
      ttl: duration(),
      maxEntries: int({ min: 1 }),
      maxBytes: int({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      key: obj({ headers: listOf(str({ rule: checkHeaderName })), body: bool() }),
    }),
    route: obj({ host: str({ minLength: 1 }), subset: str({ minLength: 1 }) }, { required: ['host'] }),
    response: obj({
      status: int({ min: 200, max: 599 }),
      headers: mapOf(str({ rule: (v) => (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(v) ? 'header values cannot contain control characters' : undefined) }), { key: checkHeaderName }),
      body: str(),
    }),
  },
  { required: ['host'] },
);

// ---- rules -----------------------------------------------------------------------------------

/** As loaded, before defaults: any part may be missing where its schema check failed. */
interface RawSpec {
  host?: string;
  subset?: string;
  on?: Array<FallbackTrigger | undefined>;
  cache?: { ttl?: string; maxEntries?: number; maxBytes?: number; key?: { headers?: Array<string | undefined>; body?: boolean } };
  route?: { host?: string; subset?: string };
  response?: { status?: number; headers?: Record<string, string>; body?: string };
}

function checkDestination(ctx: RuleContext, path: string, host: string | undefined, subset: string | undefined): void {
  if (host !== undefined && host !== '') {
    const problem = host.includes('*') ? `a fallback names one service; wildcard host ${JSON.stringify(host)} is not allowed` : checkFQDN(host);
    if (problem) ctx.error(joinPath(path, 'host'), problem);
  }
  if (subset !== undefined && subset !== '' && !isDNS1123Label(subset)) ctx.error(joinPath(path, 'subset'), `subset name is invalid: ${subset}`);
}

function rules(s: RawSpec, ctx: RuleContext): void {
  checkDestination(ctx, 'spec', s.host, s.subset);

  const seen = new Set<string>();
  for (const [trigger, p] of items(s.on, 'spec.on')) {
    if (seen.has(trigger)) ctx.error(p, `trigger ${JSON.stringify(trigger)} is listed twice`, Codes.DUPLICATE);
    seen.add(trigger);
  }

  if (!s.cache && !s.route && !s.response) {
    ctx.error('spec', 'a FallbackPolicy needs at least one of cache, route or response (tried in that order)', Codes.REQUIRED);
  }

  const names = new Set<string>();
  for (const [header, p] of items(s.cache?.key?.headers, 'spec.cache.key.headers')) {
    const lower = header.toLowerCase();
    if (names.has(lower)) ctx.error(p, `header ${JSON.stringify(header)} is listed twice (header names are case-insensitive)`, Codes.DUPLICATE);
    names.add(lower);
  }

  if (s.route) {
    checkDestination(ctx, 'spec.route', s.route.host, s.route.subset);
    if (s.route.host !== undefined && s.route.host === s.host && (s.route.subset ?? '') === (s.subset ?? '')) {
      ctx.error('spec.route', 'the fallback route must lead to another destination (host or subset) than the one it protects', Codes.CONFLICT);
    }
  }

  const r = s.response;
  if (r) {
    const status = r.status ?? 200;
    if ((status === 204 || status === 304) && (r.body ?? '') !== '') {
      ctx.error('spec.response.body', `a ${status} response cannot have a body`, Codes.CONFLICT);
    }
    const lower = new Map<string, string>();
    for (const name of Object.keys(r.headers ?? {})) {
      const p = joinPath('spec.response.headers', name);
      const l = name.toLowerCase();
      if (PROXY_HEADERS.has(l)) ctx.error(p, `${name} is set by the proxy${l === 'x-weft-fallback' ? ' (it labels every fallback answer)' : ''}; remove it`);
      const earlier = lower.get(l);
      if (earlier !== undefined) ctx.error(p, `header ${JSON.stringify(name)} is the same header as ${JSON.stringify(earlier)}`, Codes.DUPLICATE);
      else lower.set(l, name);
    }
  }
}

/** Defaults: the three non-5xx triggers; a static answer is a 200 with no extra headers and an empty body unless it says otherwise. */
function finish(s: RawSpec): FallbackPolicySpec {
  const out: FallbackPolicySpec = {
    host: s.host!,
    on: s.on && s.on.length > 0 ? (s.on as FallbackTrigger[]) : [...DEFAULT_FALLBACK_TRIGGERS],
  };
  if (s.subset !== undefined) out.subset = s.subset;
  if (s.cache) {
    const { key: rawKey, ...rest } = s.cache;
    const cache: FallbackCacheSpec = { ...rest };
    if (rawKey) {
      const key: NonNullable<FallbackCacheSpec['key']> = {};
      if (rawKey.headers) key.headers = (rawKey.headers as string[]).map((h) => h.toLowerCase());
      if (rawKey.body !== undefined) key.body = rawKey.body;
      cache.key = key;
    }
    out.cache = cache;
  }
  if (s.route) {
    out.route = { host: s.route.host! };
    if (s.route.subset !== undefined) out.route.subset = s.route.subset;
  }
  if (s.response) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.response.headers ?? {})) headers[k.toLowerCase()] = v;
    out.response = { status: s.response.status ?? 200, headers, body: s.response.body ?? '' };
  }
  return out;
}

export const fallbackPolicy: KindDef<RawSpec> = {
  group: 'weft.dev',
  kind: 'FallbackPolicy',
  versions: ['v1alpha1'],
  origin: 'Weft',
  protoNames: false,
  spec,
  specRequired: true,
  rules,
  finish,
};
