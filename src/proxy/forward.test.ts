// Request headers as they cross the proxy: hop-by-hop and pseudo-headers stay behind, TE: trailers goes on.
// A try's failure as the pipeline sees it: which local failure an upstream error is.
// An answer already all here is relayed in one piece, trailers and all.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, get, type ServerResponse } from 'node:http';
import { connect as connectHttp2, createServer as createHttp2Server } from 'node:http2';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { MeshError } from '../core/errors.ts';
import { forwardableHeaders, relay, tryUpstream } from './forward.ts';
import { H1Upstream } from './upstream/h1.ts';
import { MeshHttp2Response } from './listener.ts';
import type { Upstream, UpstreamResponse } from './upstream/upstream.ts';

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

it('relays an answer that is all here in one piece: body, trailers, extra headers, bytes; a client already gone is a disconnect', async () => {
  // A chunked answer with a trailer, written at once: it is whole by the time it is relayed.
  const upstreamServer = createTcpServer((s) => {
    s.on('data', () => s.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n'));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => upstreamServer.listen(0, '127.0.0.1', r));
  const port = (upstreamServer.address() as AddressInfo).port;
  const pool = new H1Upstream({ authority: `127.0.0.1:${port}`, connect: () => connect({ host: '127.0.0.1', port }), readyEvent: 'connect' });

  const results: Array<{ whole: boolean; r: Awaited<ReturnType<typeof relay>>; tapped: string }> = [];
  const relayed = (answer: UpstreamResponse, res: ServerResponse) => {
    let whole = false;
    const take = answer.takeWhole!.bind(answer);
    answer.takeWhole = () => {
      const w = take();
      whole = w !== undefined;
      return w;
    };
    let tapped = '';
    return relay(answer, res, { 'x-extra': '1' }, undefined, () => false, { tap: (c) => (tapped += c.toString()) }).then((r) => results.push({ whole, r, tapped }));
  };
  const proxy = createServer(async (req, res) => {
    const answer = await pool.request({ method: 'GET', path: '/', headers: { host: 'svc' } });
    if (req.url === '/gone') await new Promise((r) => res.once('close', r));
    await relayed(answer, res);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxyPort = (proxy.address() as AddressInfo).port;

  const got = await new Promise<{ body: string; trailers: NodeJS.Dict<string>; extra: unknown }>((resolve, reject) => {
    get({ port: proxyPort, host: '127.0.0.1', path: '/' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ body, trailers: res.trailers, extra: res.headers['x-extra'] }));
    }).on('error', reject);
  });
  assert.deepEqual(got, { body: 'hello', trailers: { 'x-sum': '42' }, extra: '1' });
  assert.deepEqual(results.shift(), { whole: true, r: { bytes: 5, grpcStatus: '' }, tapped: 'hello' });

  // The client leaves before the answer is relayed: nothing is written, and the relay says why.
  const gone = get({ port: proxyPort, host: '127.0.0.1', path: '/gone' });
  gone.on('error', () => {});
  await new Promise((r) => setTimeout(r, 100));
  gone.destroy();
  for (let i = 0; i < 50 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(results.shift(), { whole: true, r: { bytes: 0, grpcStatus: '', failure: 'DOWNSTREAM_DISCONNECT' }, tapped: '' });

  // The same over HTTP/2 downstream (the listener's compatibility response): the caller resets its stream first.
  const h2proxy = createHttp2Server({ Http2ServerResponse: MeshHttp2Response }, async (req, res) => {
    const answer = await pool.request({ method: 'GET', path: '/', headers: { host: 'svc' } });
    await new Promise((r) => res.stream.once('close', r));
    await relayed(answer, res as unknown as ServerResponse);
  });
  await new Promise<void>((r) => h2proxy.listen(0, '127.0.0.1', r));
  const session = connectHttp2(`http://127.0.0.1:${(h2proxy.address() as AddressInfo).port}`);
  session.on('error', () => {});
  const stream = session.request({ ':path': '/gone' });
  stream.on('error', () => {});
  await new Promise((r) => setTimeout(r, 100));
  stream.close();
  for (let i = 0; i < 50 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(results.shift(), { whole: true, r: { bytes: 0, grpcStatus: '', failure: 'DOWNSTREAM_DISCONNECT' }, tapped: '' });
  session.close();
  h2proxy.close();

  await pool.close();
  proxy.closeAllConnections();
  proxy.close();
  upstreamServer.close();
});
