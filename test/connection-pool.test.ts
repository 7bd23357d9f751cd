// Connection pool settings that act on the connections themselves, end to end through `weft up`:
// `tcp.maxConnectionDuration`, `http.http2KeepAlive` and `tcp.tcpKeepalive`, seen from the upstreams
// (which connection or session each request came on, the PINGs they get) and from the kernel (`ss`).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createH2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2';
import { connect as tcpConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { weftUp, viaEdge, type RunningWeft } from './helpers/mesh.ts';

const run = promisify(execFile);
const VERSION_SERVER = fileURLToPath(new URL('./fixtures/apps/version-server.ts', import.meta.url));

/** Where each request to an upstream came from: its connection (HTTP/1.1) or session (HTTP/2), numbered 1, 2, … as accepted. */
interface Upstream {
  port: number;
  /** [path, connection] per request, in order. */
  seen: Array<[string, number]>;
  /** When each connection (session) was accepted and closed, by number. */
  openedAt: Map<number, number>;
  closedAt: Map<number, number>;
  /** HTTP/2: when each PING arrived, per session. */
  pings: Map<number, number[]>;
  close(): void;
}

/** `/slow?ms=N` answers `first,` at once and `last` after N ms; anything else `ok`. */
function answer(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  req.resume();
  if (url.pathname !== '/slow') {
    res.end('ok');
    return;
  }
  const r = res as ServerResponse; // (the HTTP/2 compatibility answer has the same methods)
  r.writeHead(200, { 'content-type': 'text/plain' });
  r.write('first,');
  const timer = setTimeout(() => r.end('last'), Number(url.searchParams.get('ms')));
  r.on('close', () => clearTimeout(timer));
}

function listen(s: { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

async function h1Upstream(tls?: { key: Buffer; cert: Buffer }): Promise<Upstream> {
  const ids = new WeakMap<Socket, number>();
  const u: Upstream = { port: 0, seen: [], openedAt: new Map(), closedAt: new Map(), pings: new Map(), close: () => {} };
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    u.seen.push([new URL(req.url ?? '/', 'http://x').pathname, ids.get(req.socket)!]);
    answer(req, res);
  };
  const server = tls ? createHttpsServer(tls, handler) : createHttpServer(handler);
  let count = 0;
  server.on(tls ? 'secureConnection' : 'connection', (socket: Socket) => {
    const id = ++count;
    ids.set(socket, id);
    u.openedAt.set(id, performance.now());
    socket.on('close', () => u.closedAt.set(id, performance.now()));
  });
  u.port = await listen(server);
  u.close = () => {
    server.closeAllConnections();
    server.close();
  };
  return u;
}

async function h2Upstream(): Promise<Upstream> {
  const ids = new WeakMap<Http2Session, number>();
  const sessions = new Set<Http2Session>();
  let count = 0;
  const u: Upstream = { port: 0, seen: [], openedAt: new Map(), closedAt: new Map(), pings: new Map(), close: () => {} };
  const server = createH2Server((req, res) => {
    u.seen.push([new URL(req.url ?? '/', 'http://x').pathname, ids.get(req.stream.session!)!]);
    answer(req, res);
  });
  server.on('session', (session: Http2Session) => {
    const id = ++count;
    ids.set(session, id);
    u.openedAt.set(id, performance.now());
    sessions.add(session);
    u.pings.set(id, []);
    session.on('ping', () => u.pings.get(id)!.push(performance.now()));
    session.on('close', () => {
      sessions.delete(session);
      u.closedAt.set(id, performance.now());
    });
  });
  u.port = await listen(server);
  u.close = () => {
    for (const s of sessions) s.destroy();
    server.close();
  };
  return u;
}

/** A TCP relay to `port` whose connections the test can freeze: bytes then go nowhere, as to a host gone silent. */
async function relay(port: number) {
  const pairs: Array<{ down: Socket; up: Socket; closedAt?: number }> = [];
  const server = createTcpServer((down) => {
    const up = tcpConnect({ host: '127.0.0.1', port });
    const pair: { down: Socket; up: Socket; closedAt?: number } = { down, up };
    pairs.push(pair);
    down.pipe(up).pipe(down);
    down.on('error', () => up.destroy());
    up.on('error', () => down.destroy());
    down.on('close', () => {
      pair.closedAt = performance.now();
      up.destroy();
    });
  });
  const relayPort = await listen(server);
  return {
    port: relayPort,
    pairs,
    /** Stop passing bytes on the connections open now (new ones still pass); their close is still seen. */
    freeze() {
      for (const { down, up } of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        // (unpipe paused them: resume explicitly, so the close of either side is still read.)
        down.on('data', () => {}).resume();
        up.on('data', () => {}).resume();
      }
    },
    close() {
      for (const { down, up } of pairs) {
        down.destroy();
        up.destroy();
      }
      server.close();
    },
  };
}

/** ss's timer text in ms: `6.684ms` is 6 s 684 ms, then `59sec`, `1min5sec`, `119min`, `684ms`. */
function ssMs(text: string): number {
  const m = /^(?:(\d+)min)?(?:(\d+)(sec|\.))?(?:(\d+)ms)?$/.exec(text);
  if (!m) throw new Error(`unexpected ss timer ${text}`);
  return Number(m[1] ?? 0) * 60_000 + Number(m[2] ?? 0) * 1000 + Number(m[4] ?? 0);
}

/**
 * The keepalive timers (ms left) of the established connections to 127.0.0.1:`port`; null for one
 * without keepalive. ss shows one timer per socket: while a segment waits for its ACK (a delayed
 * ACK holds it up to 40 ms) that is the retransmit timer (`on`), which hides the keepalive one, so
 * such a reading is taken again.
 */
async function keepaliveTimers(port: number): Promise<Array<number | null>> {
  for (let attempt = 0; ; attempt++) {
    const { stdout } = await run('ss', ['-tnoeH', 'state', 'established', 'dst', `127.0.0.1:${port}`]);
    const lines = stdout.split('\n').filter((l) => l.trim());
    if (attempt < 20 && lines.some((l) => /timer:\((?!keepalive)/.test(l))) {
      await sleep(50);
      continue;
    }
    return lines.map((l) => {
      const m = /timer:\(keepalive,([^,]+),/.exec(l);
      return m ? ssMs(m[1]!) : null;
    });
  }
}

describe('connection pool: connection lifetime and keepalive, through the mesh', () => {
  let weft: RunningWeft;
  let accessLog: string;
  const up: Record<string, Upstream> = {};
  let frozen: Awaited<ReturnType<typeof relay>>;
  let meshInbound: number;

  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'weft-connection-pool-'));
    await mkdir(join(dir, 'mesh'));
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=ka.example.com',
      '-addext', 'subjectAltName=DNS:ka.example.com', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    up.durH1 = await h1Upstream();
    up.durH2 = await h2Upstream();
    up.ping = await h2Upstream();
    frozen = await relay(up.ping.port);
    up.kaH1 = await h1Upstream();
    up.kaH2 = await h2Upstream();
    up.kaTls = await h1Upstream({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) });
    up.plainH1 = await h1Upstream();
    up.plainH2 = await h2Upstream();

    const service = (name: string, port: number) =>
      `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports: [{name: http, port: 80}]\n---\n` +
      `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}}\nspec:\n  address: 127.0.0.1\n  ports: {http: ${port}}\n  labels: {app: ${name}}\n`;
    const dr = (host: string, policy: string) =>
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${host.split('.')[0]}}\nspec:\n  host: ${host}\n  trafficPolicy: ${policy}\n`;
    const docs = [
      service('dur-h1', up.durH1.port),
      dr('dur-h1', '{connectionPool: {tcp: {maxConnectionDuration: 1s}}}'),
      service('dur-h2', up.durH2.port),
      dr('dur-h2', '{connectionPool: {tcp: {maxConnectionDuration: 1s}, http: {h2UpgradePolicy: UPGRADE}}}'),
      service('ping', frozen.port),
      dr('ping', '{connectionPool: {http: {h2UpgradePolicy: UPGRADE, http2KeepAlive: {interval: 200ms, timeout: 300ms}}}}'),
      service('ka-h1', up.kaH1.port),
      dr('ka-h1', '{connectionPool: {tcp: {tcpKeepalive: {time: 7s}}}}'),
      service('ka-h2', up.kaH2.port),
      dr('ka-h2', '{connectionPool: {tcp: {tcpKeepalive: {time: 8s}}, http: {h2UpgradePolicy: UPGRADE}}}'),
      // TLS originated by the proxy to a server outside the mesh.
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ka-tls}\nspec:\n  hosts: [ka.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: ${up.kaTls.port}}}]\n`,
      dr('ka.example.com', `{tls: {mode: SIMPLE, caCertificates: ${join(dir, 'cert.pem')}}, connectionPool: {tcp: {tcpKeepalive: {time: 9s}}}}`),
      // mTLS to a workload's sidecar.
      `apiVersion: v1\nkind: Service\nmetadata: {name: ka-mesh}\nspec:\n  selector: {app: ka-mesh}\n  ports: [{name: http, port: 80}]\n`,
      `apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: ka-mesh}\nspec:\n  labels: {app: ka-mesh}\n  command: [node, ${VERSION_SERVER}]\n  env: {VERSION: ka}\n`,
      dr('ka-mesh', '{connectionPool: {tcp: {tcpKeepalive: {time: 11s}}}}'),
      // Without the setting: 60 s keepalive on HTTP/1.1 (undici's default, kept), none on HTTP/2 sessions.
      service('plain-h1', up.plainH1.port),
      service('plain-h2', up.plainH2.port),
      dr('plain-h2', '{connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}'),
    ];
    accessLog = join(dir, 'access.log');
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--access-log', accessLog]);
    const sidecar = (await weft.status()).proxies.find((p) => p.workload === 'ka-mesh');
    meshInbound = Number(sidecar!.listeners.inbound!.split(':').pop());
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    for (const u of Object.values(up)) u.close();
    frozen?.close();
  });

  const send = (host: string, path = '/') => viaEdge(weft.edge, host, path);
  const until = async (what: string, check: () => boolean | Promise<boolean>, ms = 5000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(20);
    }
  };

  for (const [name, host, unit] of [
    ['HTTP/1.1', 'dur-h1', 'connection'],
    ['HTTP/2', 'dur-h2', 'session'],
  ] as const) {
    test(`maxConnectionDuration (${name}): requests after it get a new ${unit}; a request spanning it completes intact`, async () => {
      const u = host === 'dur-h1' ? up.durH1 : up.durH2;
      assert.equal((await send(host, '/a')).status, 200);
      const opened = performance.now();
      // 2.5 s on the first connection, across its 1 s duration.
      const long = send(host, '/slow?ms=2500');
      await until('the long request to arrive', () => u.seen.length === 2);
      assert.deepEqual(u.seen, [['/a', 1], ['/slow', 1]]);
      await sleep(1300 - (performance.now() - opened));
      assert.equal((await send(host, '/b')).status, 200);
      assert.deepEqual(u.seen[2], ['/b', 2], `a request past the duration goes on a new ${unit}`);
      assert.equal(u.closedAt.has(1), false, `the first ${unit} stays open while its answer is in flight`);
      const r = await long;
      const ended = performance.now();
      assert.equal(r.status, 200);
      assert.equal(r.body, 'first,last');
      await until(`the first ${unit} to close once its answer was done`, () => u.closedAt.has(1), 2000);
      assert.ok(u.closedAt.get(1)! >= ended - 50, 'closed after the answer, not during it');
      if (host === 'dur-h2') {
        // HTTP/2 sessions drain on a timer: the second closes at its duration, idle, without another request.
        await until('the idle second session to close at its duration', () => u.closedAt.has(2), 3000);
        assert.equal(u.seen.length, 3);
      } else {
        // The pool retires a connection past its duration when it picks one for the next request,
        // so an idle one is not reused either: the next request gets a third.
        await sleep(1200 - (performance.now() - u.openedAt.get(2)!));
        assert.equal(u.closedAt.has(2), false);
        assert.equal((await send(host, '/c')).status, 200);
        assert.deepEqual(u.seen[3], ['/c', 3]);
        await until('the idle second connection to close', () => u.closedAt.has(2), 2000);
      }
    });
  }

  test('http2KeepAlive: the upstream session gets a PING every interval; unanswered, the proxy closes it and the next request opens another', async () => {
    const u = up.ping;
    assert.equal((await send('ping', '/a')).status, 200);
    await sleep(1100);
    // Answered PINGs, about every 200 ms (the next one counted from the ACK), on the one session.
    const pings = u.pings.get(1)!;
    assert.ok(pings.length >= 3 && pings.length <= 7, `${pings.length} PINGs in 1.1 s`);
    const gaps = pings.slice(1).map((t, i) => t - pings[i]!);
    const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    assert.ok(mean >= 150 && mean <= 400, `PINGs every ${mean.toFixed(0)} ms`);
    assert.equal(frozen.pairs.length, 1);
    assert.equal(frozen.pairs[0]!.closedAt, undefined, 'answered PINGs keep the connection');

    // The upstream goes silent: a request in flight on the session fails when the PING times out.
    frozen.freeze();
    const frozenAt = performance.now();
    const held = await send('ping', '/held');
    assert.equal(held.status, 503);
    await until('the proxy to close the silent connection', () => frozen.pairs[0]!.closedAt !== undefined, 3000);
    const after = frozen.pairs[0]!.closedAt! - frozenAt;
    assert.ok(after >= 250 && after <= 1500, `closed ${after.toFixed(0)} ms after the upstream went silent (interval 200 ms + timeout 300 ms)`);
    const log = await readFile(accessLog, 'utf8');
    assert.match(log, /"path":"\/held","status":503,"response_flags":"UC"/);

    const next = await send('ping', '/b');
    assert.equal(next.status, 200);
    assert.equal(frozen.pairs.length, 2, 'on a new connection');
    assert.deepEqual(u.seen.at(-1), ['/b', 2]);
  });

  test('tcpKeepalive: the proxy’s upstream sockets probe after `time` idle — HTTP/1.1, HTTP/2, TLS and mTLS to a sidecar', async () => {
    for (const host of ['ka-h1', 'ka-h2', 'ka.example.com', 'plain-h1', 'plain-h2']) assert.equal((await send(host, '/k')).status, 200, host);
    await until('the ka-mesh workload to answer', async () => (await send('ka-mesh', '/k')).status === 200, 30_000);
    // ss shows the time left until the first probe: `time` minus the idle time since the request.
    const near = (timers: Array<number | null>, ms: number, what: string) => {
      assert.ok(timers.length > 0, `${what}: no connection`);
      for (const t of timers) assert.ok(t !== null && t > ms - 3000 && t <= ms, `${what}: keepalive ${t} ms, want about ${ms}`);
    };
    near(await keepaliveTimers(up.kaH1!.port), 7000, 'HTTP/1.1 pool');
    near(await keepaliveTimers(up.kaH2!.port), 8000, 'HTTP/2 session');
    near(await keepaliveTimers(up.kaTls!.port), 9000, 'TLS');
    near(await keepaliveTimers(meshInbound), 11_000, 'mTLS to the sidecar');
    // The controls: without the setting, 60 s on HTTP/1.1 (undici's default, kept) and nothing on HTTP/2.
    near(await keepaliveTimers(up.plainH1!.port), 60_000, 'HTTP/1.1 without tcpKeepalive');
    const plainH2 = await keepaliveTimers(up.plainH2!.port);
    assert.deepEqual(plainH2, [null], 'HTTP/2 without tcpKeepalive');
  });
});
