// Request headers as they cross the proxy: hop-by-hop and pseudo-headers stay behind, TE: trailers goes on.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { forwardableHeaders } from './forward.ts';

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
