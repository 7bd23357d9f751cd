// HTTP/2 through a proxy: downstream h2c (prior knowledge) and HTTP/1.1 on the same port, an h2c
// upstream, trailers, and the streaming guarantees — events pass one by one, a cut stream reaches
// the client as an error, a client that leaves cancels the upstream, bodies stream both ways.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, createServer as createH2Server, constants, type Http2Server, type ClientHttp2Session, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect as tcpConnect, type AddressInfo } from 'node:net';
import { createServer as createHttp1Server, type Server as Http1Server } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startHarness, snapshotFor, type Harness } from './helpers/proxy-harness.ts';

let upstream: Http2Server;
let h1upstream: Http1Server;
let h: Harness;
let upstreamClosed: () => void = () => {};
const sentAt: number[] = [];
const seenVersions: string[] = [];

before(async () => {
  upstream = createH2Server();
  upstream.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const path = headers[':path'];
    seenVersions.push(`${path} ${headers[':authority']} te=${headers.te ?? ''}`);
    stream.on('error', () => {});
    if (path === '/events') {
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      let i = 0;
      const next = () => {
        if (stream.destroyed) return;
        if (i === 6) return stream.end('data: [DONE]\n\n');
        sentAt[i] = performance.now();
        stream.write(`data: ${i++}\n\n`);
        setTimeout(next, 80);
      };
      return next();
    }
    if (path === '/cut') {
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.write('first part;');
      setTimeout(() => stream.destroy(new Error('cut')), 50);
      return;
    }
    if (path === '/forever') {
      stream.respond({ ':status': 200, 'content-type': 'text/event-stream' });
      const timer = setInterval(() => stream.write('data: tick\n\n'), 20);
      stream.on('close', () => {
        clearInterval(timer);
        upstreamClosed();
      });
      return;
    }
    if (path === '/trailers') {
      // A gRPC-shaped answer: body, then the status in trailers.
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '5', 'grpc-message': 'not here' }));
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      return;
    }
    if (path === '/echo') {
      // Echo each request chunk as it comes: the answer starts before the request ends.
      stream.respond({ ':status': 200 });
      stream.on('data', (c: Buffer) => stream.write(c));
      stream.on('end', () => stream.end());
      return;
    }
    if (path === '/hash') {
      const hash = createHash('sha256');
      stream.on('data', (c: Buffer) => hash.update(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(hash.digest('hex'));
      });
      return;
    }
    stream.respond({ ':status': 200, 'x-served-by': 'h2c' });
    stream.end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  // An HTTP/1.1 upstream whose answer is cut after the first part.
  h1upstream = createHttp1Server((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part;');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  await new Promise<void>((r) => h1upstream.listen(0, '127.0.0.1', r));
  h = await startHarness();
  const h1cluster = 'outbound|80||h1.default.svc.cluster.local';
  const ack = await h.send(
    snapshotFor(1, [{ port: (upstream.address() as AddressInfo).port }], {
      protocol: 'h2',
      routes: [
        { name: 'h1', match: [{ uri: { prefix: '/h1/' } }], action: { kind: 'route', destinations: [{ cluster: h1cluster, weight: 1 }] } },
        { name: 'h2', match: [], action: { kind: 'route', destinations: [{ cluster: 'outbound|80||svc.default.svc.cluster.local', weight: 1 }] } },
      ],
      clusters: [
        {
          name: h1cluster,
          service: { host: 'h1.default.svc.cluster.local', name: 'h1', namespace: 'default', port: 80 },
          lb: { simple: 'ROUND_ROBIN' },
          protocol: 'http1',
          endpoints: [{ host: '127.0.0.1', port: (h1upstream.address() as AddressInfo).port, weight: 1, workload: 'h1', namespace: 'default', app: 'h1', version: 'v1', identity: 'x', sidecar: false }],
        },
      ],
    }),
  );
  assert.equal(ack.type, 'ack');
});

after(async () => {
  await h.close();
  await new Promise<void>((r) => upstream.close(() => r()));
  h1upstream.closeAllConnections();
  await new Promise<void>((r) => h1upstream.close(() => r()));
});

/** A downstream HTTP/2 client session to the proxy's outbound listener (prior knowledge). */
function session(): ClientHttp2Session {
  const s = h2connect(`http://${h.outbound}`);
  s.on('error', () => {});
  return s;
}

/** One HTTP/2 request: status, headers, body chunks with arrival times, trailers, or the stream error. */
function h2request(s: ClientHttp2Session, path: string, opts: { body?: Buffer; endStream?: boolean } = {}) {
  const stream = s.request({ ':path': path, ':authority': 'svc', ...(opts.body ? { 'content-type': 'application/octet-stream' } : {}) }, { endStream: opts.endStream ?? !opts.body });
  if (opts.body) stream.end(opts.body);
  return new Promise<{ status: number; headers: IncomingHttpHeaders; body: string; arrivals: Array<[string, number]>; trailers?: IncomingHttpHeaders; error?: Error; rstCode?: number }>((resolve) => {
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const arrivals: Array<[string, number]> = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      headers = h;
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => arrivals.push([c.toString(), performance.now()]));
    let error: Error | undefined;
    stream.on('error', (e) => (error = e));
    stream.on('close', () => resolve({ status, headers, body: arrivals.map(([c]) => c).join(''), arrivals, trailers, error, rstCode: stream.rstCode }));
  });
}

test('an HTTP/2 client (prior knowledge) and an HTTP/1.1 client share the listener; the upstream gets h2c', async () => {
  const s = session();
  const r = await h2request(s, '/');
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
  assert.equal(r.headers['x-served-by'], 'h2c');
  const r1 = await request(`http://${h.outbound}/`, { headers: { host: 'svc' } });
  assert.equal(r1.statusCode, 200);
  assert.equal(await r1.body.text(), 'ok');
  // The authority reached the upstream as :authority; no pseudo-header leaked as a header.
  assert.ok(seenVersions.some((v) => v === '/ svc te='), seenVersions.join('\n'));
});

test('over HTTP/2, server-sent events pass one by one', async () => {
  const s = session();
  const r = await h2request(s, '/events');
  s.close();
  assert.equal(r.status, 200);
  assert.match(r.body, /data: \[DONE\]/);
  const at: number[] = [];
  for (const [chunk, t] of r.arrivals) for (const m of chunk.matchAll(/data: (\d+)/g)) at[Number(m[1])] = t;
  for (let i = 0; i < 5; i++) assert.ok(at[i] < sentAt[i + 1], `event ${i} was held back until event ${i + 1} was sent`);
});

test('trailers pass through, h2 to h2 (the gRPC status of an answer with a body)', async () => {
  const s = session();
  const r = await h2request(s, '/trailers');
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.trailers?.['grpc-status'], '5');
  assert.equal(r.trailers?.['grpc-message'], 'not here');
  // The proxy recorded the trailer's status, not an empty one.
  const metrics = await (await request(`http://${h.admin}/metrics`)).body.text();
  assert.match(metrics, /istio_requests_total\{[^}]*response_code="200",grpc_response_status="5",[^}]*\} 1/);
});

test('an upstream stream reset mid-body reaches an HTTP/2 client as a stream error, an HTTP/1.1 client as a broken body', async () => {
  const s = session();
  const r = await h2request(s, '/cut');
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'first part;');
  assert.notEqual(r.rstCode, constants.NGHTTP2_NO_ERROR, 'the stream ended cleanly');
  await assert.rejects(async () => {
    const res = await request(`http://${h.outbound}/cut`, { headers: { host: 'svc' } });
    await res.body.text();
  });
});

test('an HTTP/1.1 upstream that dies mid-body reaches an HTTP/2 client as a stream error', async () => {
  const s = session();
  const r = await h2request(s, '/h1/cut');
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'first part;');
  assert.ok(r.error, 'no stream error');
  assert.notEqual(r.rstCode, constants.NGHTTP2_NO_ERROR);
});

test('an HTTP/2 client that resets its stream cancels the upstream stream within a second', async () => {
  const closed = new Promise<number>((r) => (upstreamClosed = () => r(performance.now())));
  const s = session();
  const stream = s.request({ ':path': '/forever', ':authority': 'svc' });
  stream.on('error', () => {});
  await new Promise<void>((r) => stream.once('data', () => r()));
  const abortedAt = performance.now();
  stream.close(constants.NGHTTP2_CANCEL);
  const at = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Infinity), 3000))]);
  s.close();
  assert.ok(at - abortedAt < 1000, `upstream still open ${at - abortedAt} ms after the client left`);
});

test('a request body with no declared length streams through intact over HTTP/2', async () => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const s = session();
  const r = await h2request(s, '/hash', { body });
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.body, createHash('sha256').update(body).digest('hex'));
});

test('full duplex: the answer streams back while the request is still being sent', async () => {
  const s = session();
  const stream = s.request({ ':path': '/echo', ':authority': 'svc' }, { endStream: false });
  stream.on('error', () => {});
  const echoed = (text: string) =>
    new Promise<string>((resolve) => {
      let got = '';
      const onData = (c: Buffer) => {
        got += c.toString();
        if (got.includes(text)) {
          stream.off('data', onData);
          resolve(got);
        }
      };
      stream.on('data', onData);
    });
  for (const word of ['one', 'two', 'three']) {
    const back = echoed(word);
    stream.write(word);
    assert.match(await back, new RegExp(word));
  }
  stream.end();
  await new Promise<void>((r) => stream.on('close', () => r()));
  s.close();
});

test('HTTP/2 inside a CONNECT tunnel (gRPC clients with http_proxy set)', async () => {
  const [host, port] = h.outbound.split(':');
  const socket = tcpConnect({ host, port: Number(port) });
  socket.write('CONNECT svc:80 HTTP/1.1\r\nHost: svc:80\r\n\r\n');
  await new Promise<void>((resolve, reject) => {
    socket.once('data', (d: Buffer) => (d.toString().startsWith('HTTP/1.1 200') ? resolve() : reject(new Error(d.toString()))));
  });
  const s = h2connect('http://svc:80', { createConnection: () => socket });
  s.on('error', () => {});
  const r = await h2request(s, '/');
  s.close();
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
});

test('a snapshot the transports cannot act on is NACKed, and the proxy keeps serving', async () => {
  const port = (upstream.address() as AddressInfo).port;
  const unreadable = snapshotFor(2, [{ port }], { protocol: 'h2' });
  unreadable.clusters[0].tls = { mode: 'SIMPLE', caCertificates: '/nonexistent/ca.pem' };
  const a = await h.send(unreadable);
  assert.equal(a.type, 'nack');
  assert.match(a.error ?? '', /tls file \/nonexistent\/ca\.pem/);
  const bad = snapshotFor(3, [{ port }], { protocol: 'h3' as 'h2' });
  const b = await h.send(bad);
  assert.equal(b.type, 'nack');
  assert.match(b.error ?? '', /protocol "h3" is not http1 or h2/);
  const r = await request(`http://${h.outbound}/`, { headers: { host: 'svc' } });
  assert.equal(await r.body.text(), 'ok');
});
