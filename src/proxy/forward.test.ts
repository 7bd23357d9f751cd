// Request headers as they cross the proxy: hop-by-hop and pseudo-headers stay behind, TE: trailers goes on.
// A try's failure as the pipeline sees it: which local failure an upstream error is.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { MeshError } from '../core/errors.ts';
import { forwardableHeaders, tryUpstream } from './forward.ts';
import type { Upstream } from './upstream/upstream.ts';

it('drops hop-by-hop headers, those Connection names, HTTP/2 pseudo-headers and the extra one', () => {
  const raw = [
    ':method', 'POST', ':path', '/x', ':authority', 'svc', ':scheme', 'http',
    'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'Upgrade', 'websocket',
    'x-weft-peer', 'spoofed', 'Content-Type', 'application/grpc', 'x-multi', 'a', 'x-multi', 'b',
  ];
  assert.deepEqual({ ...forwardableHeaders(raw, 'x-weft-peer') }, { 'content-type': 'application/grpc', 'x-multi': ['a', 'b'] });
});

it('keeps TE only as "trailers" (gRPC needs it end to end), as Envoy does', () => {
  assert.deepEqual({ ...forwardableHeaders(['te', 'trailers']) }, { te: 'trailers' });
  assert.deepEqual({ ...forwardableHeaders(['TE', 'gzip, Trailers;q=1']) }, { te: 'trailers' });
  assert.deepEqual({ ...forwardableHeaders(['te', 'gzip']) }, {});
});

/** A pool whose every request fails with `err`. */
const failing = (err: Error): Upstream => ({ request: () => Promise.reject(err), close: async () => {} });
const failureOf = async (err: Error) => {
  const t = await tryUpstream({ pool: failing(err), method: 'POST', path: '/', headers: {}, body: undefined, signal: new AbortController().signal }, () => false);
  return t.kind === 'local' ? t.code : 'answered';
};
const coded = (code: string) => Object.assign(new Error(code), { code });

it('classifies upstream errors: a stream refused unprocessed apart from other resets and connect failures', async () => {
  assert.equal(await failureOf(coded('UPSTREAM_REFUSED_STREAM')), 'UPSTREAM_REFUSED_STREAM');
  assert.equal(await failureOf(coded('UPSTREAM_RESET')), 'UPSTREAM_RESET');
  assert.equal(await failureOf(coded('UND_ERR_SOCKET')), 'UPSTREAM_RESET');
  assert.equal(await failureOf(coded('ECONNREFUSED')), 'UPSTREAM_CONNECT_FAILURE');
  assert.equal(await failureOf(coded('ERR_TLS_CERT_ALTNAME_INVALID')), 'UPSTREAM_CONNECT_FAILURE');
});

it('a refused stream answers 503 with Envoy\'s flag for it, UR (a reset stays UC)', () => {
  const refused = new MeshError('UPSTREAM_REFUSED_STREAM');
  assert.equal(refused.status, 503);
  assert.equal(refused.flag, 'UR');
  assert.equal(refused.source, 'upstream');
  assert.match(refused.message, /reset reason: remote refused stream reset$/);
  assert.equal(new MeshError('UPSTREAM_RESET').flag, 'UC');
});
