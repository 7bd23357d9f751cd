// The HTTP/1.1 upstream over loopback: keep-alive reuse, framing both ways, answers the proxy must
// not mistake for others (1xx, HEAD, trailers), and failures that must stay failures.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { H1Upstream, type H1Options } from './h1.ts';
import type { UpstreamResponse } from './upstream.ts';

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    (s as { closeAllConnections?: () => void }).closeAllConnections?.();
    s.close();
  }
});

/** A node:http server; each request is told which connection (1, 2, …) it came on. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse, conn: number) => void) {
  const ids = new WeakMap<Socket, number>();
  let count = 0;
  const server = createHttpServer((req, res) => handler(req, res, ids.get(req.socket)!));
  server.on('connection', (s: Socket) => ids.set(s, ++count));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, connections: () => count };
}

/** A TCP server that answers each connection's first request with `reply` (raw bytes), then does `after`. */
async function rawServer(reply: (request: string) => string, after: 'keep' | 'end' | 'destroy' = 'keep') {
  let connections = 0;
  const server = createTcpServer((s) => {
    connections++;
    let buffered = '';
    s.on('data', (d) => {
      buffered += d.toString('latin1');
      if (!buffered.includes('\r\n\r\n')) return;
      s.write(reply(buffered));
      buffered = '';
      if (after === 'end') s.end();
      if (after === 'destroy') s.destroy();
    });
    s.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}

function upstream(port: number, o: Partial<H1Options> = {}): H1Upstream {
  return new H1Upstream({ authority: `127.0.0.1:${port}`, connect: () => connect({ host: '127.0.0.1', port }), readyEvent: 'connect', ...o });
}

async function text(r: UpstreamResponse): Promise<string> {
  let s = '';
  for await (const c of r.body) s += (c as Buffer).toString('latin1');
  return s;
}

const get = (u: H1Upstream, path = '/', headers: Record<string, string | string[]> = {}) => u.request({ method: 'GET', path, headers: { host: 'svc', ...headers } });

test('keep-alive: one connection carries request after request; headers arrive as written, duplicates as a list', async () => {
  const s = await httpServer((req, res, conn) => {
    res.setHeader('x-conn', String(conn));
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(`${req.method} ${req.url} host=${req.headers.host} x=${req.headers['x-multi']}`);
  });
  const u = upstream(s.port);
  for (let i = 0; i < 5; i++) {
    const r = await get(u, `/p${i}?q=1`, { 'x-multi': ['1', '2'] });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['x-conn'], '1');
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
    assert.equal(await text(r), `GET /p${i}?q=1 host=svc x=1, 2`);
  }
  assert.equal(s.connections(), 1);
  await u.close();
});

test('request bodies: a declared length as is, an unknown length chunked, and POST without a body says so', async () => {
  const s = await httpServer(async (req, res) => {
    const h = createHash('sha256');
    let n = 0;
    for await (const c of req) {
      h.update(c as Buffer);
      n += (c as Buffer).length;
    }
    res.end(`${req.headers['transfer-encoding'] ?? '-'} ${req.headers['content-length'] ?? '-'} ${n} ${h.digest('hex')}`);
  });
  const u = upstream(s.port);
  const body = randomBytes(3 * 1024 * 1024);
  const digest = createHash('sha256').update(body).digest('hex');
  const chunks = () => Readable.from(Array.from({ length: 48 }, (_, i) => body.subarray(i * 65536, (i + 1) * 65536)));
  const chunked = await u.request({ method: 'POST', path: '/', headers: { host: 'svc' }, body: chunks() });
  assert.equal(await text(chunked), `chunked - ${body.length} ${digest}`);
  const sized = await u.request({ method: 'PUT', path: '/', headers: { host: 'svc', 'content-length': String(body.length) }, body: chunks() });
  assert.equal(await text(sized), `- ${body.length} ${body.length} ${digest}`);
  const empty = await u.request({ method: 'POST', path: '/', headers: { host: 'svc' } });
  assert.equal(await text(empty), `- 0 0 ${createHash('sha256').digest('hex')}`);
  await u.close();
});

test('1xx answers are not the answer; HEAD has no body whatever its headers say; trailers arrive by the end', async () => {
  const early = await rawServer(() => 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok');
  const u1 = upstream(early.port);
  const r1 = await get(u1);
  assert.deepEqual([r1.statusCode, r1.headers.link, await text(r1)], [200, undefined, 'ok']);
  await u1.close();

  const s = await httpServer((req, res) => {
    if (req.method === 'HEAD') {
      res.setHeader('content-length', '1000');
      res.end();
      return;
    }
    res.setHeader('trailer', 'x-checksum');
    res.write('body');
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end();
  });
  const u = upstream(s.port);
  const head = await u.request({ method: 'HEAD', path: '/', headers: { host: 'svc' } });
  assert.deepEqual([head.statusCode, head.headers['content-length'], await text(head)], [200, '1000', '']);
  const withTrailers = await get(u);
  assert.equal(await text(withTrailers), 'body');
  assert.deepEqual(withTrailers.trailers, { 'x-checksum': 'abc' });
  assert.equal(s.connections(), 1, 'the HEAD answer left the connection reusable');
  await u.close();
});

test('an answer cut before its end fails its body; a connection closed after the answer is not reused', async () => {
  const cut = await rawServer(() => 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial', 'destroy');
  const u = upstream(cut.port);
  const r = await get(u);
  assert.equal(r.statusCode, 200);
  await assert.rejects(text(r), /closed|answer was complete/);
  await u.close();

  let served = 0;
  const closing = await rawServer(() => `HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: ${String(++served).length}\r\n\r\n${served}`, 'end');
  const u2 = upstream(closing.port);
  assert.equal(await text(await get(u2)), '1');
  assert.equal(await text(await get(u2)), '2', 'a new connection, not the closed one');
  await u2.close();

  // Close-delimited: no length, no chunking; the body is what comes until the close.
  const untilClose = await rawServer(() => 'HTTP/1.1 200 OK\r\n\r\nall of it', 'end');
  const u3 = upstream(untilClose.port);
  assert.equal(await text(await get(u3)), 'all of it');
  await u3.close();
});

test('failures before the answer reject with the codes classify() reads', async () => {
  // Nothing listens there (a port just freed).
  const probe = createTcpServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const freed = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(get(upstream(freed)), { code: 'ECONNREFUSED' });

  // Connected, but never ready (a TLS handshake nobody answers): the connect timeout.
  const silent = await rawServer(() => '');
  await assert.rejects(get(upstream(silent.port, { readyEvent: 'secureConnect', connectTimeoutMs: 100 })), { code: 'UND_ERR_CONNECT_TIMEOUT' });

  // No socket at all (an mTLS cluster on a proxy without a certificate).
  const refused = new H1Upstream({ authority: 'x:1', readyEvent: 'connect', connect: () => { throw Object.assign(new Error('no certificate'), { code: 'ERR_TLS_NO_CERTIFICATE' }); } });
  await assert.rejects(get(refused), { code: 'ERR_TLS_NO_CERTIFICATE' });

  const garbage = await rawServer(() => 'SMTP ready\r\n\r\n');
  await assert.rejects(get(upstream(garbage.port)), /not valid HTTP\/1\.1/);

  const s = await httpServer((_req, res) => res.end('x'));
  const u = upstream(s.port);
  await assert.rejects(get(u, '/', { 'x-evil': 'a\r\nx-injected: 1' }), /line break/);
  await assert.rejects(get(u, '/a HTTP/1.1\r\nx-injected: 1\r\n\r\nGET /b'), /whitespace or NUL/);
  const ac = new AbortController();
  const slow = await httpServer(() => {});
  const pending = upstream(slow.port).request({ method: 'GET', path: '/', headers: { host: 'svc' }, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(pending, { name: 'AbortError' });
  await u.close();
  await assert.rejects(get(u), { code: 'UND_ERR_CLOSED' });
});

test('pool settings: requests per connection, idle connections closed, the server’s keep-alive hint, graceful close', async () => {
  const s = await httpServer((_req, res, conn) => res.end(String(conn)));
  const one = upstream(s.port, { maxRequestsPerConnection: 2 });
  const conns = [];
  for (let i = 0; i < 4; i++) conns.push(await text(await get(one)));
  assert.deepEqual(conns, ['1', '1', '2', '2']);
  await one.close();

  const idle = upstream(s.port, { idleMs: 150 });
  const first = await text(await get(idle));
  await new Promise((r) => setTimeout(r, 400));
  assert.notEqual(await text(await get(idle)), first, 'closed while idle: the next request opens another');
  await idle.close();

  // The server keeps idle connections 2 s: the pool lets go of them a second before.
  const hinted = await rawServer(() => 'HTTP/1.1 200 OK\r\nkeep-alive: timeout=2\r\ncontent-length: 2\r\n\r\nok');
  const h = upstream(hinted.port, { idleMs: 60_000 });
  await text(await get(h));
  await text(await get(h));
  assert.equal(hinted.connections(), 1, 'reused within the hint');
  await new Promise((r) => setTimeout(r, 1100));
  await text(await get(h));
  assert.equal(hinted.connections(), 2, 'not reused a second before the server would close it');
  await h.close();

  // close() waits for the answer in flight, which completes.
  const slow = await httpServer((_req, res) => setTimeout(() => res.end('late'), 100));
  const g = upstream(slow.port);
  const inFlight = get(g);
  await new Promise((r2) => setTimeout(r2, 20));
  let closed = false;
  const done = g.close().then(() => (closed = true));
  assert.equal(await text(await inFlight), 'late');
  await done;
  assert.equal(closed, true);
});

test('a body all here before anyone reads it is taken whole, once; one still coming, or past a stream’s buffer, streams with backpressure', async () => {
  const small = randomBytes(1024);
  let release: (() => void) | undefined;
  const s = await httpServer((req, res) => {
    if (req.url === '/small') return res.end(small);
    if (req.url === '/later') {
      res.writeHead(200, { 'content-length': '5' });
      res.flushHeaders();
      release = () => res.end('later');
      return;
    }
    // Far more than the socket buffers hold: the server finishes only if the proxy reads.
    const big = Buffer.alloc(16 * 1024 * 1024, 7);
    res.end(big);
    res.on('finish', () => (bigFinished = true));
  });
  let bigFinished = false;
  const u = upstream(s.port);

  const whole = await get(u, '/small');
  const taken = whole.takeWhole?.();
  assert.ok(taken, 'the answer came in one read with its headers');
  assert.deepEqual(Buffer.concat(taken), small);
  assert.equal(whole.takeWhole?.(), undefined, 'taken once');
  assert.equal(await text(whole), '', 'nothing left to stream');

  const later = await get(u, '/later');
  assert.equal(later.takeWhole?.(), undefined, 'not all here yet');
  release!();
  assert.equal(await text(later), 'later');

  const big = await get(u, '/big');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(bigFinished, false, 'an unread body holds the upstream back');
  assert.equal(big.takeWhole?.(), undefined, 'past a stream’s buffer the body is a stream');
  let n = 0;
  for await (const c of big.body) n += (c as Buffer).length;
  assert.equal(n, 16 * 1024 * 1024);
  assert.equal(s.connections(), 1, 'every answer left the connection reusable');
  await u.close();
});

test('answers that come in many reads, on connections read in turns, arrive intact', async () => {
  // Each answer is written a few bytes at a time, a header split mid-name and mid-value, while
  // another connection's answer comes in between.
  const value = (tag: string) => `${tag}-`.repeat(2000);
  const answer = (tag: string) => `HTTP/1.1 200 OK\r\nx-long: ${value(tag)}\r\nx-tag: ${tag}\r\ncontent-length: ${value(tag).length}\r\n\r\n${value(tag)}`;
  const server = createTcpServer((s) => {
    s.once('data', async (d) => {
      const tag = /GET \/(\w+)/.exec(d.toString('latin1'))![1]!;
      const bytes = answer(tag);
      for (let i = 0; i < bytes.length; i += 997) {
        s.write(bytes.slice(i, i + 997));
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    s.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u = upstream((server.address() as AddressInfo).port);
  const [a, b] = await Promise.all([get(u, '/alpha'), get(u, '/beta')]);
  assert.deepEqual([a.headers['x-tag'], a.headers['x-long'], await text(a)], ['alpha', value('alpha'), value('alpha')]);
  assert.deepEqual([b.headers['x-tag'], b.headers['x-long'], await text(b)], ['beta', value('beta'), value('beta')]);
  await u.close();
});
