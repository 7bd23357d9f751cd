// The fallback answer cache of a FallbackPolicy: the last good answer to an equivalent request, bounded in entries and bytes, LRU, with a TTL on an injected clock; pure.
//
// "Equivalent" is the key, and only the key: method + path always, the values of the chosen
// headers, and (unless turned off) a SHA-256 of the request body. A cached answer is never served
// for a request whose key differs — two requests that differ in any keyed part never share an
// entry. What is worth caching (a complete 2xx answer, say) is the caller's decision.

import { createHash } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { checkInt } from '../../core/config-fields.ts';
import type { FallbackCacheConfig } from '../../wire/resilience.ts';

export type { FallbackCacheConfig } from '../../wire/resilience.ts';

// ---- wire config ----------------------------------------------------------------------------
// The config arrives filled in (src/translate/resilience.ts parses the FallbackPolicy's block).

/** Header names: an RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function checkFallbackCacheConfig(c: FallbackCacheConfig): void {
  checkInt('fallback cache: ttlMs', c.ttlMs, 1, Number.MAX_SAFE_INTEGER);
  checkInt('fallback cache: maxEntries', c.maxEntries, 1, Number.MAX_SAFE_INTEGER);
  checkInt('fallback cache: maxBytes', c.maxBytes, 1, Number.MAX_SAFE_INTEGER);
  if (!Array.isArray(c.keyHeaders) || c.keyHeaders.some((h) => typeof h !== 'string' || !TOKEN.test(h) || h !== h.toLowerCase())) {
    throw new Error('fallback cache: keyHeaders must be lowercase header names');
  }
  if (typeof c.keyBody !== 'boolean') throw new Error('fallback cache: keyBody must be a boolean');
}

// ---- keys -----------------------------------------------------------------------------------

/** The parts of a request that may go into a key. */
export interface CacheKeyRequest {
  method: string;
  /** Path and query, as the upstream would see them. */
  path: string;
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** The whole request body (absent = empty). */
  body?: Uint8Array;
}

/**
 * The cache key of a request under `config`. Unambiguous: parts are JSON-encoded, so no choice
 * of values can make two different requests collide (short of a SHA-256 collision on bodies).
 * A header that is absent and one that is present but empty are different keys; repeated header
 * lines are joined in order with ", " as HTTP allows. Header names are looked up lowercase.
 */
export function fallbackCacheKey(config: Pick<FallbackCacheConfig, 'keyHeaders' | 'keyBody'>, req: CacheKeyRequest): string {
  const parts: Array<string | null> = [req.method.toUpperCase(), req.path];
  for (const name of config.keyHeaders) {
    const v = req.headers[name];
    parts.push(v === undefined ? null : typeof v === 'string' ? v : v.join(', '));
  }
  if (config.keyBody) parts.push(createHash('sha256').update(req.body ?? new Uint8Array(0)).digest('hex'));
  return JSON.stringify(parts);
}

// ---- the cache ------------------------------------------------------------------------------

/** An answer as stored and served. */
export interface CachedAnswer {
  status: number;
  headers: Readonly<Record<string, string | readonly string[]>>;
  body: Uint8Array;
}

export interface CacheHit extends CachedAnswer {
  /** When it was stored, on the cache's clock. */
  storedAt: number;
  /** How long ago it was stored (for an `age` header). */
  ageMs: number;
}

export interface FallbackCacheStats {
  entries: number;
  bytes: number;
  hits: number;
  misses: number;
  /** Entries dropped to stay within maxEntries / maxBytes. */
  evictions: number;
  /** Entries dropped because their TTL was up. */
  expirations: number;
  /** Answers not stored because they alone exceed maxBytes. */
  tooLarge: number;
}

interface Entry {
  answer: CachedAnswer;
  storedAt: number;
  bytes: number;
}

function sizeOf(key: string, a: CachedAnswer): number {
  let n = Buffer.byteLength(key) + a.body.byteLength;
  for (const [name, v] of Object.entries(a.headers)) {
    n += Buffer.byteLength(name);
    for (const s of typeof v === 'string' ? [v] : v) n += Buffer.byteLength(s);
  }
  return n;
}

/**
 * One FallbackPolicy's answer cache. `put` stores (or refreshes) the answer for a key, evicting
 * least recently used entries until both bounds hold; `get` returns a fresh entry for exactly
 * that key and marks it recently used, or undefined. Stored answers are copied in and never
 * mutated, so callers cannot change what later requests get.
 */
export class FallbackCache {
  readonly config: Readonly<FallbackCacheConfig>;
  private readonly clock: Clock;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly counters = { hits: 0, misses: 0, evictions: 0, expirations: 0, tooLarge: 0 };

  constructor(config: FallbackCacheConfig, clock: Clock) {
    checkFallbackCacheConfig(config);
    this.config = Object.freeze({ ...config, keyHeaders: Object.freeze([...config.keyHeaders]) as unknown as string[] });
    this.clock = clock;
  }

  /** The key of a request under this cache's config. */
  keyOf(req: CacheKeyRequest): string {
    return fallbackCacheKey(this.config, req);
  }

  get(key: string): CacheHit | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.counters.misses++;
      return undefined;
    }
    if (this.clock.now() - e.storedAt >= this.config.ttlMs) {
      this.remove(key, e);
      this.counters.expirations++;
      this.counters.misses++;
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    this.counters.hits++;
    // A typed array cannot be frozen: hand out a copy, so a caller cannot change later hits.
    return { status: e.answer.status, headers: e.answer.headers, body: Uint8Array.from(e.answer.body), storedAt: e.storedAt, ageMs: this.clock.now() - e.storedAt };
  }

  /** Stores `answer` as the latest good answer for `key`. Returns false if it alone is too big. */
  put(key: string, answer: CachedAnswer): boolean {
    const copy: CachedAnswer = Object.freeze({
      status: answer.status,
      headers: Object.freeze(Object.fromEntries(Object.entries(answer.headers).map(([k, v]) => [k, typeof v === 'string' ? v : Object.freeze([...v])]))),
      body: Uint8Array.from(answer.body),
    });
    const bytes = sizeOf(key, copy);
    const old = this.entries.get(key);
    if (old) this.remove(key, old);
    if (bytes > this.config.maxBytes) {
      this.counters.tooLarge++;
      return false;
    }
    this.entries.set(key, { answer: copy, storedAt: this.clock.now(), bytes });
    this.bytes += bytes;
    this.evict();
    return true;
  }

  /** Drops expired entries (for a periodic timer; `get` never serves them anyway). */
  prune(now: number = this.clock.now()): number {
    let n = 0;
    for (const [key, e] of this.entries) {
      if (now - e.storedAt >= this.config.ttlMs) {
        this.remove(key, e);
        this.counters.expirations++;
        n++;
      }
    }
    return n;
  }

  stats(): FallbackCacheStats {
    return { entries: this.entries.size, bytes: this.bytes, ...this.counters };
  }

  private remove(key: string, e: Entry): void {
    this.entries.delete(key);
    this.bytes -= e.bytes;
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.config.maxEntries && this.bytes <= this.config.maxBytes) return;
      this.remove(key, e);
      this.counters.evictions++;
    }
  }
}

/** The response header that labels every fallback answer, and its values. */
export const FALLBACK_HEADER = 'x-weft-fallback';
export type FallbackKind = 'cache' | 'route' | 'static';
