// The fallback answer cache: keys, TTL, entry and byte bounds, LRU.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.ts';
import { parseFallbackCacheConfig } from '../../translate/resilience.ts';
import { FallbackCache, fallbackCacheKey, type CachedAnswer } from './cache.ts';

const enc = new TextEncoder();
const answer = (text: string, status = 200): CachedAnswer => ({ status, headers: { 'content-type': 'application/json' }, body: enc.encode(text) });
const text = (a: { body: Uint8Array } | undefined) => (a ? new TextDecoder().decode(a.body) : undefined);

function cache(fields: Record<string, unknown> = {}) {
  const clock = new ManualClock(0);
  return { clock, c: new FallbackCache(parseFallbackCacheConfig(fields), clock) };
}

const req = (body: string, headers: Record<string, string | string[]> = {}, method = 'POST', path = '/v1/predict') => ({ method, path, headers, body: enc.encode(body) });

describe('parseFallbackCacheConfig', () => {
  it('reads the issue’s example and fills defaults', () => {
    assert.deepEqual(parseFallbackCacheConfig({ ttl: '10m', maxEntries: 10000, key: { headers: ['X-User-Id'], body: true } }), {
      ttlMs: 600_000,
      maxEntries: 10_000,
      maxBytes: 16 * 1024 * 1024,
      keyHeaders: ['x-user-id'],
      keyBody: true,
    });
    assert.deepEqual(parseFallbackCacheConfig({}), { ttlMs: 300_000, maxEntries: 1000, maxBytes: 16 * 1024 * 1024, keyHeaders: [], keyBody: true });
  });

  it('rejects invalid blocks', () => {
    assert.throws(() => parseFallbackCacheConfig({ maxEntries: 0 }), /not in range/);
    assert.throws(() => parseFallbackCacheConfig({ ttl: 'forever' }), /invalid duration/);
    assert.throws(() => parseFallbackCacheConfig({ key: { headers: ['bad header'] } }), /not a header name/);
    assert.throws(() => parseFallbackCacheConfig({ key: { headers: ['a', 'A'] } }), /listed twice/);
    assert.throws(() => parseFallbackCacheConfig({ keys: {} }), /unknown field/);
  });
});

describe('keys', () => {
  const config = parseFallbackCacheConfig({ key: { headers: ['x-user-id'], body: true } });

  it('method + path always, the chosen headers, and the body hash', () => {
    const base = fallbackCacheKey(config, req('{"text":"good"}', { 'x-user-id': 'u1' }));
    assert.equal(fallbackCacheKey(config, req('{"text":"good"}', { 'x-user-id': 'u1', 'x-other': 'ignored' })), base);
    assert.notEqual(fallbackCacheKey(config, req('{"text":"bad"}', { 'x-user-id': 'u1' })), base, 'body');
    assert.notEqual(fallbackCacheKey(config, req('{"text":"good"}', { 'x-user-id': 'u2' })), base, 'header');
    assert.notEqual(fallbackCacheKey(config, req('{"text":"good"}', {})), base, 'header absent');
    assert.notEqual(fallbackCacheKey(config, req('{"text":"good"}', { 'x-user-id': 'u1' }, 'PUT')), base, 'method');
    assert.notEqual(fallbackCacheKey(config, req('{"text":"good"}', { 'x-user-id': 'u1' }, 'POST', '/v2/predict')), base, 'path');
  });

  it('absent and empty headers differ; values cannot be crafted to collide', () => {
    const two = parseFallbackCacheConfig({ key: { headers: ['a', 'b'], body: false } });
    assert.notEqual(fallbackCacheKey(two, req('', { a: '' })), fallbackCacheKey(two, req('', {})));
    assert.notEqual(fallbackCacheKey(two, req('', { a: 'x","y' })), fallbackCacheKey(two, req('', { a: 'x', b: 'y' })));
    assert.equal(fallbackCacheKey(two, req('', { a: ['1', '2'] })), fallbackCacheKey(two, req('', { a: '1, 2' })));
  });

  it('without body: true, the body is not part of the key', () => {
    const noBody = parseFallbackCacheConfig({ key: { body: false } });
    assert.equal(fallbackCacheKey(noBody, req('one')), fallbackCacheKey(noBody, req('two')));
  });
});

describe('the cache', () => {
  it('never serves an answer across different keys (different request bodies)', () => {
    const { c } = cache();
    c.put(c.keyOf(req('{"text":"I love it"}')), answer('{"label":"positive"}'));
    assert.equal(text(c.get(c.keyOf(req('{"text":"I hate it"}')))), undefined);
    assert.equal(text(c.get(c.keyOf(req('{"text":"I love it"}')))), '{"label":"positive"}');
  });

  it('serves until the TTL is up, then never again', () => {
    const { c, clock } = cache({ ttl: '10s' });
    c.put('k', answer('a'));
    clock.advance(9_999);
    const hit = c.get('k')!;
    assert.equal(text(hit), 'a');
    assert.equal(hit.storedAt, 0);
    clock.advance(1);
    assert.equal(c.get('k'), undefined);
    assert.deepEqual({ entries: c.stats().entries, bytes: c.stats().bytes, expirations: c.stats().expirations }, { entries: 0, bytes: 0, expirations: 1 });
  });

  it('a newer good answer replaces the old one and restarts its TTL', () => {
    const { c, clock } = cache({ ttl: '10s' });
    c.put('k', answer('old'));
    clock.advance(8_000);
    c.put('k', answer('new'));
    clock.advance(8_000);
    assert.equal(text(c.get('k')), 'new');
    assert.equal(c.stats().entries, 1);
  });

  it('is bounded in entries, evicting the least recently used', () => {
    const { c } = cache({ maxEntries: 2 });
    c.put('a', answer('A'));
    c.put('b', answer('B'));
    c.get('a'); // a is now more recent than b
    c.put('c', answer('C'));
    assert.equal(c.get('b'), undefined);
    assert.equal(text(c.get('a')), 'A');
    assert.equal(text(c.get('c')), 'C');
    assert.equal(c.stats().evictions, 1);
  });

  it('is bounded in bytes (bodies, headers and keys count)', () => {
    const body = 'x'.repeat(400);
    const one = answer(body);
    const size = 1 + 400 + 'content-type'.length + 'application/json'.length; // key "a" + body + header
    const { c } = cache({ maxBytes: size * 2 });
    c.put('a', one);
    c.put('b', answer(body));
    assert.equal(c.stats().bytes, size * 2);
    c.put('c', answer(body));
    assert.equal(c.get('a'), undefined);
    assert.equal(c.stats().entries, 2);
    assert.ok(c.stats().bytes <= size * 2);
  });

  it('does not store an answer bigger than maxBytes on its own', () => {
    const { c } = cache({ maxBytes: 100 });
    c.put('small', answer('ok'));
    assert.equal(c.put('big', answer('y'.repeat(200))), false);
    assert.equal(c.get('big'), undefined);
    assert.equal(text(c.get('small')), 'ok', 'nothing was evicted for it');
    assert.equal(c.stats().tooLarge, 1);
  });

  it('stored answers are copies: changing the original or a hit does not change the cache', () => {
    const { c } = cache();
    const a = answer('{"label":"positive"}');
    c.put('k', a);
    a.body.fill(0);
    const hit = c.get('k')!;
    assert.equal(text(hit), '{"label":"positive"}');
    assert.throws(() => ((hit.headers as Record<string, string>)['x'] = 'y'));
    hit.body.fill(0);
    assert.equal(text(c.get('k')), '{"label":"positive"}');
  });

  it('prune drops expired entries', () => {
    const { c, clock } = cache({ ttl: '1s' });
    c.put('a', answer('A'));
    clock.advance(500);
    c.put('b', answer('B'));
    clock.advance(600);
    assert.equal(c.prune(), 1);
    assert.equal(c.stats().entries, 1);
  });
});
