// The HTTP/2 upstream's pool settings: connect timeout, requests per connection, streams per connection.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Session } from 'node:http2';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { H2Upstream } from './h2.ts';

async function h2server() {
  const sessions = new Set<Http2Session>();
  let opened = 0;
  const server = createServer((req, res) => {
    if (req.url === '/hold') return; // keeps its stream open
    res.end('ok');
  });
  server.on('session', (s) => {
    opened++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    opened: () => opened,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}

const get = async (u: H2Upstream, path = '/') => {
  const r = await u.request({ path, method: 'GET', headers: { host: 'x' } });
  await r.body.dump();
  return r.statusCode;
};

test('maxRequestsPerConnection: a session carries that many streams, then a new one is opened', async () => {
  const s = await h2server();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), maxRequestsPerSession: 3 });
  for (let i = 0; i < 7; i++) assert.equal(await get(u), 200);
  assert.equal(s.opened(), 3);
  await u.close();
  await s.close();
});

test('maxConcurrentStreams caps the streams on one session below the server’s limit', async () => {
  const s = await h2server();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), maxConcurrentStreams: 2 });
  // Four held streams at once, two per session at most: two sessions.
  for (let i = 0; i < 4; i++) u.request({ path: '/hold', method: 'GET', headers: { host: 'x' } }).catch(() => {});
  for (let i = 0; i < 40 && s.opened() < 2; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(s.opened(), 2);
  await s.close();
  await u.close();
});

test('connectTimeout: a connection not up in time (here a TLS handshake that never answers) is a connect failure', async () => {
  const silent = createTcpServer(() => {}); // accepts, never speaks
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as AddressInfo).port;
  const u = new H2Upstream({ scheme: 'https', authority: `127.0.0.1:${port}`, connect: () => tlsConnect({ host: '127.0.0.1', port, ALPNProtocols: ['h2'], rejectUnauthorized: false }), connectTimeoutMs: 100 });
  const started = performance.now();
  await assert.rejects(u.request({ path: '/', method: 'GET', headers: { host: 'x' } }), (err: { code?: string }) => err.code === 'UND_ERR_CONNECT_TIMEOUT');
  const took = performance.now() - started;
  assert.ok(took >= 90 && took < 1000, `${took} ms`);
  await u.close();
  silent.close();
});
