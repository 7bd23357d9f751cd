// Fallback helpers: which failures trigger, which answers may be cached, and the tap that keeps them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import type { UpstreamResponse } from '../upstream/upstream.ts';
import { CacheTap, cacheable, triggerOf } from './fallback.ts';

const answer = (status: number, headers: Record<string, string> = {}, extra: Partial<UpstreamResponse> = {}): UpstreamResponse => ({
  statusCode: status,
  headers,
  body: Object.assign(Readable.from([]), { dump: async () => {} }),
  trailers: {},
  ...extra,
});

test('triggers: unavailable (no healthy endpoint, connect failure, reset before an answer), overflow, timeout; never the client leaving', () => {
  assert.equal(triggerOf('NO_HEALTHY_UPSTREAM'), 'unavailable');
  assert.equal(triggerOf('UPSTREAM_CONNECT_FAILURE'), 'unavailable');
  assert.equal(triggerOf('UPSTREAM_RESET'), 'unavailable');
  assert.equal(triggerOf('UPSTREAM_REFUSED_STREAM'), 'unavailable', 'a stream refused unprocessed is a reset before an answer');
  assert.equal(triggerOf('OVERFLOW'), 'overflow');
  assert.equal(triggerOf('UPSTREAM_TIMEOUT'), 'timeout');
  assert.equal(triggerOf('DOWNSTREAM_DISCONNECT'), undefined);
  assert.equal(triggerOf('STREAM_IDLE_TIMEOUT'), undefined, 'a stream cut after its first byte is never replaced');
});

test('only complete 2xx answers that are not streams are kept, within the byte bound', () => {
  assert.ok(cacheable(answer(200, { 'content-type': 'application/json' }), 100));
  assert.ok(!cacheable(answer(500), 100));
  assert.ok(!cacheable(answer(302), 100));
  assert.ok(!cacheable(answer(200, { 'content-type': 'text/event-stream' }), 100));
  assert.ok(!cacheable(answer(200, { 'content-type': 'application/grpc+proto' }), 100));
  assert.ok(!cacheable(answer(200, { 'content-type': 'application/x-ndjson' }), 100));
  assert.ok(!cacheable(answer(200, { 'content-length': '101' }), 100));
  assert.ok(!cacheable(answer(200, {}, { trailersOnly: true }), 100));
});

test('the tap keeps the body as relayed, drops per-client headers, and gives up past its bound or with trailers', () => {
  const tap = new CacheTap(10);
  tap.push(Buffer.from('hello '));
  tap.push(Buffer.from('you'));
  const kept = tap.answer(answer(200, { 'content-type': 'text/plain', 'set-cookie': 'a=1', 'content-length': '9', date: 'x' }));
  assert.deepEqual(kept && { ...kept, body: Buffer.from(kept.body).toString() }, { status: 200, headers: { 'content-type': 'text/plain' }, body: 'hello you' });
  const over = new CacheTap(4);
  over.push(Buffer.from('hello'));
  assert.equal(over.answer(answer(200)), undefined);
  const withTrailers = new CacheTap(10);
  assert.equal(withTrailers.answer(answer(200, {}, { trailers: { 'grpc-status': '0' } })), undefined);
});
