// An Istio HTTPRoute's behaviour (retries, fault, mirrors, rewrite, redirect, headers, CORS) as wire records.

import type { Destination, HeaderOperations, Headers, HTTPRoute, StringMatch } from '../api/types.ts';
import { parseDuration } from '../core/duration.ts';
import type {
  CorsConfig,
  FaultConfig,
  HeaderOpsConfig,
  RedirectConfig,
  RetryPolicyConfig,
  RewriteConfig,
} from '../wire/snapshot.ts';

/** Istio's mesh default, used when a route has no `retries` (and the consistent-hash variant). */
export function meshDefaultRetryPolicy(consistentHash: boolean): RetryPolicyConfig {
  return {
    attempts: 2,
    retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'],
    // Istio ≥ 1.24 leaves 503 out of the default: it replayed non-idempotent requests.
    retriableStatusCodes: [],
    // With consistent hashing, retries stay on the hashed host.
    avoidPreviousHosts: !consistentHash,
    backoffBaseMs: 25,
    backoffMaxMs: 250,
  };
}

/** Istio's mesh default, and how a VirtualService's `retries` overrides it (Istio's retry.go). */
export function retryPolicy(http: HTTPRoute, consistentHash: boolean): RetryPolicyConfig | undefined {
  const policy = meshDefaultRetryPolicy(consistentHash);
  const r = http.retries;
  if (!r) return policy;
  if ((r.attempts ?? 0) <= 0) return undefined; // explicitly disabled
  policy.attempts = r.attempts!;
  if (r.retryOn) {
    // Integers are status codes; naming one implies retriable-status-codes.
    const parts = r.retryOn.split(',').map((p) => p.trim()).filter(Boolean);
    const codes = parts.filter((p) => /^\d+$/.test(p)).map(Number);
    const names = parts.filter((p) => !/^\d+$/.test(p));
    if (codes.length > 0 && !names.includes('retriable-status-codes')) names.push('retriable-status-codes');
    policy.retryOn = names;
    policy.retriableStatusCodes = codes;
  }
  if (r.perTryTimeout) policy.perTryTimeoutMs = parseDuration(r.perTryTimeout);
  const rr = r as { retryIgnorePreviousHosts?: boolean; backoff?: string };
  if (rr.retryIgnorePreviousHosts !== undefined) policy.avoidPreviousHosts = rr.retryIgnorePreviousHosts;
  if (rr.backoff) {
    const base = parseDuration(rr.backoff) ?? 25;
    policy.backoffBaseMs = base;
    policy.backoffMaxMs = base * 10; // Envoy's default cap: ten times the base
  }
  return policy;
}

interface IstioFault {
  delay?: { fixedDelay?: string; percentage?: { value?: number }; percent?: number };
  abort?: { httpStatus?: number; grpcStatus?: string; percentage?: { value?: number } };
}

/** Fault injection; a fault without a percentage applies to no request (Istio's documented default). */
export function faultConfig(http: HTTPRoute): FaultConfig | undefined {
  const f = http.fault as IstioFault | undefined;
  if (!f) return undefined;
  const out: FaultConfig = {};
  if (f.delay?.fixedDelay)
    out.delay = { fixedDelayMs: parseDuration(f.delay.fixedDelay) ?? 0, percent: f.delay.percentage?.value ?? f.delay.percent ?? 0 };
  if (f.abort && (f.abort.httpStatus !== undefined || f.abort.grpcStatus !== undefined)) {
    const percent = f.abort.percentage?.value ?? 0;
    out.abort = f.abort.httpStatus !== undefined ? { percent, httpStatus: f.abort.httpStatus } : { percent, grpcStatus: f.abort.grpcStatus! };
  }
  return out.delay || out.abort ? out : undefined;
}

/** `mirror` + `mirrorPercentage` (default 100 %), or `mirrors[]` each with its own percentage. */
export function mirrorTargets(http: HTTPRoute): Array<{ destination: Destination; percent: number }> {
  if (http.mirror) {
    const legacy = (http as { mirrorPercent?: number }).mirrorPercent;
    return [{ destination: http.mirror, percent: http.mirrorPercentage?.value ?? legacy ?? 100 }];
  }
  return (http.mirrors ?? []).map((m) => ({ destination: m.destination, percent: m.percentage?.value ?? 100 }));
}

export function rewriteConfig(http: HTTPRoute): RewriteConfig | undefined {
  const r = http.rewrite;
  if (!r || (r.uri === undefined && r.authority === undefined && !r.uriRegexRewrite)) return undefined;
  return {
    ...(r.uri !== undefined ? { uri: r.uri } : {}),
    ...(r.authority !== undefined ? { authority: r.authority } : {}),
    ...(r.uriRegexRewrite?.match !== undefined ? { uriRegex: { match: r.uriRegexRewrite.match, rewrite: r.uriRegexRewrite.rewrite ?? '' } } : {}),
  };
}

interface IstioRedirect {
  uri?: string;
  authority?: string;
  port?: number;
  derivePort?: string;
  scheme?: string;
  redirectCode?: number;
}

export function redirectConfig(http: HTTPRoute): RedirectConfig | undefined {
  const r = http.redirect as IstioRedirect | undefined;
  if (!r) return undefined;
  return {
    ...(r.uri !== undefined ? { uri: r.uri } : {}),
    ...(r.authority !== undefined ? { authority: r.authority } : {}),
    ...(r.port !== undefined ? { port: r.port } : {}),
    ...(r.derivePort !== undefined ? { derivePort: r.derivePort } : {}),
    ...(r.scheme !== undefined ? { scheme: r.scheme } : {}),
    status: r.redirectCode || 301,
  };
}

export function headerOps(h: Headers | undefined): HeaderOpsConfig | undefined {
  if (!h || (!h.request && !h.response)) return undefined;
  const ops = (o: HeaderOperations | undefined) => (o && (o.set || o.add || o.remove) ? o : undefined);
  const request = ops(h.request);
  const response = ops(h.response);
  return request || response ? { ...(request ? { request } : {}), ...(response ? { response } : {}) } : undefined;
}

interface IstioCors {
  allowOrigin?: string[];
  allowOrigins?: StringMatch[];
  allowMethods?: string[];
  allowHeaders?: string[];
  exposeHeaders?: string[];
  maxAge?: string;
  allowCredentials?: boolean;
  unmatchedPreflights?: string;
}

export function corsConfig(http: HTTPRoute): CorsConfig | undefined {
  const c = http.corsPolicy as IstioCors | undefined;
  if (!c) return undefined;
  // The deprecated allowOrigin list holds exact origins, `*` meaning any.
  const legacy: StringMatch[] = (c.allowOrigin ?? []).map((o) => (o === '*' ? { regex: '.*' } : { exact: o }));
  return {
    allowOrigins: [...(c.allowOrigins ?? []), ...legacy],
    allowMethods: c.allowMethods ?? [],
    allowHeaders: c.allowHeaders ?? [],
    exposeHeaders: c.exposeHeaders ?? [],
    ...(c.maxAge ? { maxAgeSeconds: Math.round((parseDuration(c.maxAge) ?? 0) / 1000) } : {}),
    ...(c.allowCredentials !== undefined ? { allowCredentials: c.allowCredentials } : {}),
    unmatchedPreflights: c.unmatchedPreflights === 'IGNORE' ? 'IGNORE' : 'FORWARD',
  };
}
