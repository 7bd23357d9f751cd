// Fallbacks (Weft's FallbackPolicy): when the real answer cannot be had, a cached answer, another destination, or a static one — always labelled.
//
// The pipeline asks `triggerOf` whether a failure is one the policy answers; then the parts the
// policy has are tried in order — cache, route, static response — and the first that answers
// wins. Every fallback answer carries `x-weft-fallback: cache|route|static`. Nothing here runs
// once the first byte of an answer has gone to the caller: a fallback replaces an answer, it
// never patches one.

import type { ErrorCode } from '../../core/errors.ts';
import type { FallbackConfig, FallbackTriggerConfig } from '../../wire/resilience.ts';
import type { UpstreamResponse } from '../upstream/upstream.ts';
import { checkFallbackCacheConfig, FallbackCache, type CachedAnswer } from './cache.ts';

export { FALLBACK_HEADER, type FallbackKind } from './cache.ts';

const TRIGGERS: ReadonlySet<string> = new Set(['unavailable', 'overflow', 'timeout', '5xx']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A FallbackPolicy compiled for one cluster. `R` is the compiled cluster type (compile.ts). */
export interface CompiledFallback<R> {
  readonly config: FallbackConfig;
  readonly on: ReadonlySet<FallbackTriggerConfig>;
  /** The cluster the policy's `route` leads to. */
  readonly route?: R;
  readonly response?: { status: number; headers: Readonly<Record<string, string>>; body: Buffer };
  /** The policy's answer cache (shared by the clusters it protects), when it has one. */
  cache(): FallbackCache | undefined;
  /** Whether the request body must be kept: the route sends it again, the cache keys on it. */
  readonly keepsBody: boolean;
}

/** Checks a fallback config as it came over the wire; throws (the proxy NACKs). */
export function checkFallbackConfig(f: FallbackConfig, clusterExists: (name: string) => boolean): void {
  if (typeof f.policy !== 'string' || f.policy === '') throw new Error('fallback: policy must name the FallbackPolicy');
  if (!Array.isArray(f.on) || f.on.length === 0 || f.on.some((t) => !TRIGGERS.has(t))) {
    throw new Error(`fallback ${f.policy}: on must list triggers among ${[...TRIGGERS].join(', ')}`);
  }
  if (f.cache) checkFallbackCacheConfig(f.cache);
  if (f.route && !clusterExists(f.route.cluster)) throw new Error(`fallback ${f.policy}: route cluster ${f.route.cluster} is not in the snapshot`);
  const r = f.response;
  if (r) {
    if (!Number.isInteger(r.status) || r.status < 200 || r.status > 599) throw new Error(`fallback ${f.policy}: response status ${r.status} is not in 200..599`);
    if (typeof r.body !== 'string') throw new Error(`fallback ${f.policy}: response body must be a string`);
    for (const [k, v] of Object.entries(r.headers ?? {})) {
      if (!TOKEN.test(k) || typeof v !== 'string') throw new Error(`fallback ${f.policy}: response header ${JSON.stringify(k)} is not valid`);
    }
  }
  if (!f.cache && !f.route && !r) throw new Error(`fallback ${f.policy}: needs a cache, a route or a response`);
}

export function compileFallback<R>(f: FallbackConfig, route: R | undefined, cache: () => FallbackCache | undefined): CompiledFallback<R> {
  const response = f.response && {
    status: f.response.status,
    headers: Object.freeze({ ...f.response.headers }),
    body: Buffer.from(f.response.body, 'utf8'),
  };
  return Object.freeze({
    config: f,
    on: new Set(f.on),
    route,
    response,
    cache,
    keepsBody: route !== undefined || (f.cache?.keyBody ?? false),
  });
}

/**
 * Which trigger a failure before the first byte is, if any: `unavailable` — no healthy endpoint
 * (all ejected, none ready), the connection failed, or it was reset (or refused) before any answer;
 * `overflow` — a circuit limit refused the request; `timeout` — the route timeout, the per-try
 * timeout or the first-byte timeout passed before the answer started. The client leaving is none.
 */
export function triggerOf(code: ErrorCode): FallbackTriggerConfig | undefined {
  switch (code) {
    case 'NO_HEALTHY_UPSTREAM':
    case 'UPSTREAM_CONNECT_FAILURE':
    case 'UPSTREAM_RESET':
    case 'UPSTREAM_REFUSED_STREAM':
      return 'unavailable';
    case 'OVERFLOW':
      return 'overflow';
    case 'UPSTREAM_TIMEOUT':
      return 'timeout';
    default:
      return undefined;
  }
}

/** Content types of answers that stream by nature: never cached, even when they end. */
const STREAMING = /^(text\/event-stream|application\/grpc|application\/(x-)?ndjson|application\/jsonl)/i;

/** Response headers not kept in a cached answer: per-connection, per-client, or recomputed. */
const NOT_CACHED = new Set(['set-cookie', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'age', 'trailer']);

/**
 * Whether an answer may be stored as the last good one: a 2xx that is not a stream (server-sent
 * events, gRPC, NDJSON) and, when it declares its length, fits the cache's byte bound. Whether
 * it really fits is known once its body has been relayed (see `CacheTap`).
 */
export function cacheable(data: UpstreamResponse, maxBytes: number): boolean {
  if (data.statusCode < 200 || data.statusCode > 299 || data.trailersOnly) return false;
  const type = data.headers['content-type'];
  if (typeof type === 'string' && STREAMING.test(type)) return false;
  const length = Number(data.headers['content-length']);
  return !(Number.isFinite(length) && length > maxBytes);
}

/** Collects an answer's body as it is relayed, up to a bound; past it the answer is not kept. */
export class CacheTap {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private over = false;
  private readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  push(chunk: Buffer): void {
    if (this.over) return;
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      this.over = true;
      this.chunks.length = 0;
      return;
    }
    this.chunks.push(chunk);
  }
  /** The answer as stored, or undefined when it outgrew the bound or carried trailers. */
  answer(data: UpstreamResponse): CachedAnswer | undefined {
    if (this.over || Object.keys(data.trailers ?? {}).length > 0) return undefined;
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(data.headers)) if (v !== undefined && !NOT_CACHED.has(k)) headers[k] = v;
    return { status: data.statusCode, headers, body: Buffer.concat(this.chunks) };
  }
}
