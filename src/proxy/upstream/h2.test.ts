// The HTTP/2 upstream's pool settings: connect timeout, requests per connection, streams per connection, connection duration, keepalive PINGs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createServer, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { H2Upstream, type Schedule } from './h2.ts';

async function h2server() {
  const sessions = new Set<Http2Session>();
  const ordinal = new WeakMap<Http2Session, number>();
  let opened = 0;
  let pings = 0;
  /** The session (1, 2, …, in order opened) each request came on. */
  const servedBy: number[] = [];
  const waiting: Array<() => void> = [];
  const server = createServer((req, res) => {
    servedBy.push(ordinal.get(req.stream.session!)!);
    if (req.url === '/hold') return; // keeps its stream open
    if (req.url === '/wait') {
      // Half an answer now, the rest when the test says.
      res.write('first,');
      waiting.push(() => res.end('last'));
      return;
    }
    res.end('ok');
  });
  server.on('session', (s) => {
    opened++;
    ordinal.set(s, opened);
    sessions.add(s);
    s.on('ping', () => pings++);
    s.on('close', () => sessions.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    opened: () => opened,
    /** Sessions open now. */
    live: () => sessions.size,
    pings: () => pings,
    servedBy,
    /** Ends the oldest `/wait` answer. */
    finish: () => waiting.shift()!(),
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

/** Timers that fire only when the test says (H2Options.schedule). */
class ManualTimers {
  private readonly timers: Array<{ ms: number; fire: () => void; live: boolean }> = [];
  readonly schedule: Schedule = (ms, fire) => {
    const t = { ms, fire, live: true };
    this.timers.push(t);
    return () => (t.live = false);
  };
  /** Timers of `ms` still waiting. */
  pending(ms: number): number {
    return this.timers.filter((t) => t.live && t.ms === ms).length;
  }
  /** Fires the waiting timers of `ms`; returns how many. */
  fire(ms: number): number {
    const due = this.timers.filter((t) => t.live && t.ms === ms);
    for (const t of due) {
      t.live = false;
      t.fire();
    }
    return due.length;
  }
}

const until = async (what: string, check: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
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

test('maxConnectionDuration: past it a session takes no new streams, finishes those in flight intact, then closes', async (t) => {
  const s = await h2server();
  t.after(() => s.close()); // also ends the client's sessions, whatever the test left open
  const timers = new ManualTimers();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), maxSessionDurationMs: 1000, schedule: timers.schedule });
  assert.equal(await get(u), 200);
  assert.equal(await get(u), 200);
  assert.equal(timers.pending(1000), 1, 'one duration timer, started when the session connected');
  // A long answer on session 1 that spans the duration.
  const long = await u.request({ path: '/wait', method: 'GET', headers: { host: 'x' } });
  assert.equal(timers.fire(1000), 1);
  // Session 1 is draining: the next requests go to a new session, whose own timer starts.
  assert.equal(await get(u), 200);
  assert.equal(await get(u), 200);
  assert.deepEqual(s.servedBy, [1, 1, 1, 2, 2]);
  assert.equal(timers.pending(1000), 1);
  assert.equal(s.live(), 2, 'session 1 stays open while its answer is in flight');
  s.finish();
  let body = '';
  for await (const chunk of long.body) body += chunk;
  assert.equal(body, 'first,last');
  await until('session 1 to close once its last stream ended', () => s.live() === 1);
  await u.close();
});

test('maxConnectionDuration: an idle session is closed when its duration is up', async (t) => {
  const s = await h2server();
  t.after(() => s.close()); // also ends the client's sessions, whatever the test left open
  const timers = new ManualTimers();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), maxSessionDurationMs: 1000, schedule: timers.schedule });
  assert.equal(await get(u), 200);
  assert.equal(s.live(), 1);
  timers.fire(1000);
  await until('the idle session to close', () => s.live() === 0);
  assert.equal(await get(u), 200);
  assert.equal(s.opened(), 2);
  await u.close();
  await until('the sessions to close', () => s.live() === 0);
  assert.equal(timers.pending(1000), 0, 'a closed session’s duration timer is stopped');
});

test('http2KeepAlive: a PING every interval, the next one counted from the ACK', async (t) => {
  const s = await h2server();
  t.after(() => s.close()); // also ends the client's sessions, whatever the test left open
  const timers = new ManualTimers();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), keepAlive: { intervalMs: 1000, timeoutMs: 300 }, schedule: timers.schedule });
  assert.equal(await get(u), 200);
  assert.equal(s.pings(), 0);
  for (let i = 1; i <= 3; i++) {
    assert.equal(timers.fire(1000), 1);
    assert.equal(timers.pending(300), 1, 'waiting for the ACK');
    await until(`ping ${i} to reach the server`, () => s.pings() === i);
    // The ACK stops the timeout and schedules the next PING.
    await until(`the ACK of ping ${i}`, () => timers.pending(1000) === 1);
    assert.equal(timers.pending(300), 0);
  }
  assert.equal(s.opened(), 1);
  assert.equal(s.live(), 1, 'answered PINGs keep the session');
  assert.equal(await get(u), 200);
  assert.equal(s.opened(), 1);
  await u.close();
  await until('the session to close', () => s.live() === 0);
  assert.equal(timers.pending(1000) + timers.pending(300), 0, 'a closed session PINGs no more');
});

test('http2KeepAlive: a PING unanswered within the timeout closes the session; its streams fail, the next request opens another', async (t) => {
  const s = await h2server();
  t.after(() => s.close()); // also ends the client's sessions, whatever the test left open
  const timers = new ManualTimers();
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), keepAlive: { intervalMs: 1000, timeoutMs: 300 }, schedule: timers.schedule });
  assert.equal(await get(u), 200);
  const held = u.request({ path: '/hold', method: 'GET', headers: { host: 'x' } });
  await until('the held request to reach the server', () => s.servedBy.length === 2);
  timers.fire(1000);
  // The timeout fires before the ACK can come back (it needs a turn of the event loop).
  assert.equal(timers.fire(300), 1);
  await assert.rejects(held, (err: { code?: string }) => err.code === 'UPSTREAM_RESET');
  await until('the server to see the session close', () => s.live() === 0);
  assert.equal(await get(u), 200);
  assert.equal(s.opened(), 2);
  assert.equal(timers.pending(1000), 1, 'the new session PINGs too');
  await u.close();
});

test('http2KeepAlive with real timers: the server sees PINGs at about the interval', async (t) => {
  const s = await h2server();
  t.after(() => s.close()); // also ends the client's sessions, whatever the test left open
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${s.port}`, connect: () => connect({ host: '127.0.0.1', port: s.port }), keepAlive: { intervalMs: 50, timeoutMs: 1000 } });
  assert.equal(await get(u), 200);
  await new Promise((r) => setTimeout(r, 330));
  // About 6 at 50 ms (plus round trips); a loaded machine may lose a few, none gains any.
  assert.ok(s.pings() >= 2 && s.pings() <= 7, `${s.pings()} pings`);
  await u.close();
});

/** An HTTP/2 server whose `n`th stream (1-based, across sessions) meets `fate`; the others are answered. */
async function fateServer(fate: (stream: ServerHttp2Stream, n: number) => boolean) {
  let n = 0;
  const server = createServer();
  const sessions = new Set<Http2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('error', () => {});
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream) => {
    stream.on('error', () => {}); // a stream closed with an error code errors on this side too
    if (fate(stream, ++n)) return;
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const u = new H2Upstream({ scheme: 'http', authority: `127.0.0.1:${port}`, connect: () => connect({ host: '127.0.0.1', port }) });
  return {
    u,
    streams: () => n,
    close: async () => {
      await u.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const codeOf = (p: Promise<unknown>) => p.then(() => 'answered', (err: { code?: string }) => err.code);

test('a stream reset with REFUSED_STREAM before the headers fails as refused; any other reset as a reset', async (t) => {
  const f = await fateServer((stream, n) => {
    if (n === 1) stream.close(constants.NGHTTP2_REFUSED_STREAM);
    else if (n === 2) stream.close(constants.NGHTTP2_CANCEL);
    else if (n === 3) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else return false;
    return true;
  });
  t.after(() => f.close());
  assert.equal(await codeOf(get(f.u)), 'UPSTREAM_REFUSED_STREAM');
  assert.equal(await codeOf(get(f.u)), 'UPSTREAM_RESET');
  assert.equal(await codeOf(get(f.u)), 'UPSTREAM_RESET');
  assert.equal(await get(f.u), 200, 'the session still serves');
});

test('a GOAWAY whose last stream id is below the stream: refused, with NO_ERROR and with an error code alike', async (t) => {
  // node picks the last stream it received for a last stream id of 0, so the refused stream is a
  // session's second: the first (id 1) is answered, the second (id 3) gets GOAWAY(last = 1).
  const codes = [constants.NGHTTP2_NO_ERROR, constants.NGHTTP2_ENHANCE_YOUR_CALM];
  const f = await fateServer((stream, n) => {
    if (n % 2 === 1) return false;
    stream.session!.goaway(codes[n / 2 - 1], 1);
    return true;
  });
  t.after(() => f.close());
  for (const code of codes) {
    assert.equal(await get(f.u), 200);
    assert.equal(await codeOf(get(f.u)), 'UPSTREAM_REFUSED_STREAM', `GOAWAY with error code ${code}`);
  }
  assert.equal(f.streams(), 4);
});

test('a GOAWAY that covers the stream, then the connection closes: a reset, not refused (the server may have acted on it)', async (t) => {
  const f = await fateServer((stream, n) => {
    if (n !== 1) return false;
    stream.session!.goaway(constants.NGHTTP2_NO_ERROR, stream.id!);
    setTimeout(() => stream.session!.destroy(), 20);
    return true;
  });
  t.after(() => f.close());
  assert.equal(await codeOf(get(f.u)), 'UPSTREAM_RESET');
  assert.equal(await get(f.u), 200, 'the next request opens another session');
});
