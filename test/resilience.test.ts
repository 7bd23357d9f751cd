// Resilience end to end through `weft up`: outlier ejection, circuit limits, fallbacks, streaming
// timeouts and cancellation, against upstreams that fail in each way a model server fails.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { weftUpDocs, freePort, agent, type RunningWeft } from './helpers/mesh.ts';
import { serviceFor } from './helpers/recorder.ts';
import { faulty, type Faulty } from './helpers/faulty.ts';
import { createServer as createTcpServer, createConnection, type AddressInfo, type Server } from 'node:net';
import { createServer as createHttpServer, STATUS_CODES, type IncomingHttpHeaders, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket as WsClient } from 'ws';

const dr = (host: string, policy: string) =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${host}}\nspec:\n  host: ${host}\n  trafficPolicy: ${policy}\n`;
const vs = (host: string, http: string, annotations = '') =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ${host}\n${annotations ? `  annotations: ${annotations}\n` : ''}spec:\n  hosts: [${host}]\n  http:\n${http}`;
const fallback = (name: string, spec: string) => `apiVersion: weft.dev/v1alpha1\nkind: FallbackPolicy\nmetadata: {name: ${name}}\nspec: ${spec}\n`;
const cluster = (host: string) => `outbound|80||${host}.default.svc.cluster.local`;

interface Ejection {
  cluster: string;
  endpoint: string;
  reason: string;
  until: string;
  times: number;
}

describe('resilience through the mesh', () => {
  let weft: RunningWeft;
  let accessLog: string;
  let edgeAdmin: string;
  const up: Record<string, Faulty> = {};
  let deadPort: number;
  let silent: Server;

  before(async () => {
    up.bad = await faulty('bad', '500');
    up.good = await faulty('good');
    up.resetter = await faulty('resetter', 'reset');
    up.resetGood = await faulty('reset-good');
    up.hanger = await faulty('hanger', 'hang');
    up.hangGood = await faulty('hang-good');
    up.refusedGood = await faulty('refused-good');
    up.doomed = await faulty('doomed', '503');
    up.guarded = await faulty('guarded');
    up.backup = await faulty('backup');
    up.sluggish = await faulty('sluggish', 'hang');
    up.narrow = await faulty('narrow', 'slow');
    up.narrowFb = await faulty('narrow-fb', 'slow');
    up.streamer = await faulty('streamer');
    up.hangs = await faulty('hangs', 'hang');
    up.oneshot = await faulty('oneshot');
    up.keepalive = await faulty('keepalive');
    silent = createTcpServer((s) => s.on('error', () => {})); // accepts, never speaks: a TLS handshake that never ends
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    deadPort = await freePort(); // nothing listens there: connection refused
    const outlier = (n: number, extra = '') => `{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: ${n}, interval: 100ms, baseEjectionTime: 1500ms, maxEjectionPercent: 50${extra}}}`;
    const docs = [
      serviceFor('eject', [{ name: 'bad', port: up.bad.port }, { name: 'good', port: up.good.port }]),
      dr('eject', outlier(3)),
      serviceFor('refused', [{ name: 'dead', port: deadPort }, { name: 'refused-good', port: up.refusedGood.port }]),
      dr('refused', outlier(2)),
      serviceFor('resets', [{ name: 'resetter', port: up.resetter.port }, { name: 'reset-good', port: up.resetGood.port }]),
      dr('resets', outlier(2)),
      serviceFor('hangs-some', [{ name: 'hanger', port: up.hanger.port }, { name: 'hang-good', port: up.hangGood.port }]),
      dr('hangs-some', outlier(2)),
      vs('hangs-some', '  - timeout: 150ms\n    route: [{destination: {host: hangs-some}}]\n'),
      serviceFor('doomed', [{ name: 'doomed', port: up.doomed.port }]),
      dr('doomed', '{outlierDetection: {consecutive5xxErrors: 2, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 100}}'),
      serviceFor('guarded', [{ name: 'guarded', port: up.guarded.port }]),
      fallback('guarded', `{host: guarded, on: [unavailable, overflow, timeout, 5xx], cache: {ttl: 10m, maxEntries: 100, key: {headers: [x-user-id], body: true}}, response: {status: 200, headers: {content-type: application/json}, body: '{"label":"neutral"}'}}`),
      serviceFor('primary', [{ name: 'primary-dead', port: deadPort }]),
      serviceFor('backup', [{ name: 'backup', port: up.backup.port }]),
      fallback('primary', '{host: primary, route: {host: backup}}'),
      serviceFor('sluggish', [{ name: 'sluggish', port: up.sluggish.port }]),
      vs('sluggish', '  - timeout: 300ms\n    route: [{destination: {host: sluggish}}]\n'),
      fallback('sluggish', `{host: sluggish, on: [timeout], response: {status: 200, body: 'static'}}`),
      serviceFor('narrow', [{ name: 'narrow', port: up.narrow.port }]),
      dr('narrow', '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}'),
      serviceFor('narrow-fb', [{ name: 'narrow-fb', port: up.narrowFb.port }]),
      dr('narrow-fb', '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}'),
      fallback('narrow-fb', `{host: narrow-fb, on: [overflow], response: {status: 429, body: 'busy'}}`),
      serviceFor('stream', [{ name: 'streamer', port: up.streamer.port }]),
      vs('stream', '  - route: [{destination: {host: stream}}]\n', '{weft.dev/first-byte-timeout: 500ms, weft.dev/idle-timeout: 300ms}'),
      serviceFor('hangs', [{ name: 'hangs', port: up.hangs.port }]),
      serviceFor('oneshot', [{ name: 'oneshot', port: up.oneshot.port }]),
      dr('oneshot', '{connectionPool: {http: {maxRequestsPerConnection: 1}}}'),
      serviceFor('keepalive', [{ name: 'keepalive', port: up.keepalive.port }]),
      serviceFor('silent', [{ name: 'silent', port: (silent.address() as AddressInfo).port }]),
      dr('silent', '{tls: {mode: SIMPLE, insecureSkipVerify: true}, connectionPool: {tcp: {connectTimeout: 200ms}}}'),
    ];
    ({ weft, accessLog, edgeAdmin } = await weftUpDocs('weft-resilience-', docs));
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    for (const f of Object.values(up)) await f.close();
    silent?.close();
  });

  const send = async (host: string, path = '/', init: { body?: string; headers?: Record<string, string> } = {}) => {
    const started = performance.now();
    const r = await request(`http://${weft.edge}${path}`, {
      method: init.body !== undefined ? 'POST' : 'GET',
      headers: { host, ...init.headers },
      body: init.body,
      dispatcher: agent,
    });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text(), ms: performance.now() - started };
  };
  const stats = async () => (await (await fetch(`http://${edgeAdmin}/stats`)).json()) as { ejections: Ejection[]; handles: Record<string, number> };
  const metrics = async () => (await fetch(`http://${edgeAdmin}/metrics`)).text();
  const ejectionsOf = async (host: string) => (await stats()).ejections.filter((e) => e.cluster === cluster(host));
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(25);
    }
  };

  test('outlier ejection: exactly N consecutive 5xx eject an endpoint, which then gets nothing until its time is up', async () => {
    for (let i = 0; i < 20 && up.bad.hits < 3; i++) await send('eject', `/a/${i}`);
    assert.equal(up.bad.hits, 3);
    const [ejection] = await ejectionsOf('eject');
    assert.equal(ejection?.endpoint, `127.0.0.1:${up.bad.port}`);
    assert.equal(ejection.reason, 'consecutive_5xx');
    assert.equal(ejection.times, 1);
    // Ejected the moment the third error came back: not one more request reaches it.
    for (let i = 0; i < 20; i++) assert.equal((await send('eject', `/b/${i}`)).status, 200);
    assert.equal(up.bad.hits, 3);
    const text = await metrics();
    assert.match(text, new RegExp(`weft_outlier_ejected\\{cluster_name="${cluster('eject').replace(/\|/g, '\\|')}",endpoint="127.0.0.1:${up.bad.port}",reason="consecutive_5xx"\\} 1`));
    assert.match(text, /envoy_cluster_outlier_detection_ejections_enforced_consecutive_5xx\{cluster_name="outbound\|80\|\|eject\.default\.svc\.cluster\.local"\} 1/);
    // weft status shows it for the proxy that ejected it (the edge), with why and until when.
    const { stdout } = await promisify(execFile)(process.execPath, [join(process.cwd(), 'bin/weft.js'), 'status', '--state-dir', weft.stateDir]);
    assert.match(stdout, new RegExp(`weft-system/edge\\s+outbound\\|80\\|\\|eject\\S+\\s+127\\.0\\.0\\.1:${up.bad.port}\\s+consecutive_5xx`));
    // Back after baseEjectionTime (no probe), still failing: ejected again, for twice as long.
    await until('the return of the ejected endpoint', async () => (await ejectionsOf('eject')).length === 0, 4000);
    for (let i = 0; i < 20 && up.bad.hits < 6; i++) await send('eject', `/c/${i}`);
    assert.equal(up.bad.hits, 6);
    const [again] = await ejectionsOf('eject');
    assert.equal(again?.times, 2);
  });

  test('local-origin failures count too: connection refused, reset, timeout', async () => {
    // Refused: the mesh default retries connect failures elsewhere, so callers never notice.
    for (let i = 0; i < 10; i++) assert.equal((await send('refused', `/r/${i}`)).status, 200);
    assert.deepEqual((await ejectionsOf('refused')).map((e) => e.endpoint), [`127.0.0.1:${deadPort}`]);
    // Reset before an answer: 503 UC to the caller, twice, then the endpoint is out.
    const resets: number[] = [];
    for (let i = 0; i < 10; i++) resets.push((await send('resets', `/x/${i}`)).status);
    assert.equal(up.resetter.hits, 2);
    assert.equal(resets.filter((s) => s === 503).length, 2);
    assert.deepEqual((await ejectionsOf('resets')).map((e) => e.endpoint), [`127.0.0.1:${up.resetter.port}`]);
    // A hang cut by the route timeout is a 504 UT; two, and it is out.
    const hangs: number[] = [];
    for (let i = 0; i < 8; i++) hangs.push((await send('hangs-some', `/h/${i}`)).status);
    assert.equal(up.hanger.hits, 2);
    assert.equal(hangs.filter((s) => s === 504).length, 2);
    assert.deepEqual((await ejectionsOf('hangs-some')).map((e) => e.endpoint), [`127.0.0.1:${up.hanger.port}`]);
  });

  test('every endpoint ejected: 503 UH, without touching the upstream', async () => {
    for (let i = 0; i < 2; i++) assert.equal((await send('doomed', `/d/${i}`)).status, 503);
    assert.equal(up.doomed.hits, 2);
    const r = await send('doomed', '/d/next');
    assert.equal(r.status, 503);
    assert.match(r.body, /no healthy upstream/);
    assert.equal(up.doomed.hits, 2);
    await until('the access log line', async () => /"path":"\/d\/next","status":503,"response_flags":"UH"/.test(await readFile(accessLog, 'utf8')));
  });

  test('overflow: 503 UO with x-envoy-overloaded at once; a full pool queues instead of failing', async () => {
    const first = send('narrow', '/1');
    await until('the first request upstream', () => up.narrow.hits === 1);
    const second = send('narrow', '/2'); // waits for the one connection
    await sleep(50);
    const third = await send('narrow', '/3');
    assert.equal(third.status, 503);
    assert.equal(third.headers['x-envoy-overloaded'], 'true');
    assert.ok(third.ms < 150, `overflow took ${third.ms} ms`);
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.ok(b.ms >= 700, `the queued request went ahead after ${b.ms} ms, before the first one finished`);
    assert.equal(up.narrow.hits, 2);
    await until('the access log line', async () => /"path":"\/3","status":503,"response_flags":"UO"/.test(await readFile(accessLog, 'utf8')));
  });

  test('fallback cache: the last good answer to the same request, labelled; never for another body or key', async () => {
    const ask = (body: string, user = 'u1') => send('guarded', '/predict', { body, headers: { 'x-user-id': user } });
    const real = await ask('{"text":"great"}');
    assert.equal(real.status, 200);
    assert.equal(real.headers['x-weft-fallback'], undefined);
    up.guarded.mode = '500';
    const cached = await ask('{"text":"great"}');
    assert.equal(cached.status, 200);
    assert.equal(cached.headers['x-weft-fallback'], 'cache');
    assert.equal(cached.body, real.body);
    assert.ok(cached.headers.age !== undefined);
    // Another body, or another keyed header: never the cached answer, the static one instead.
    for (const other of [await ask('{"text":"awful"}'), await ask('{"text":"great"}', 'u2')]) {
      assert.equal(other.headers['x-weft-fallback'], 'static');
      assert.equal(other.body, '{"label":"neutral"}');
      assert.notEqual(other.body, real.body);
    }
    up.guarded.mode = 'ok';
    const text = await metrics();
    assert.match(text, /weft_fallback_total\{reporter="source",[^}]*destination_service="guarded\.default\.svc\.cluster\.local"[^}]*fallback="cache",trigger="5xx"\} 1/);
    assert.match(text, /weft_fallback_total\{[^}]*destination_service="guarded\.default\.svc\.cluster\.local"[^}]*fallback="static",trigger="5xx"\} 2/);
    await until('the access log line', async () => /"fallback":"cache"/.test(await readFile(accessLog, 'utf8')));
  });

  test('fallback route: another destination answers, with the body, labelled route', async () => {
    const r = await send('primary', '/predict', { body: '{"text":"hello"}' });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-weft-fallback'], 'route');
    assert.deepEqual(JSON.parse(r.body), { name: 'backup', echo: '{"text":"hello"}' });
    assert.match(await metrics(), /weft_fallback_total\{[^}]*destination_service="primary\.default\.svc\.cluster\.local"[^}]*fallback="route",trigger="unavailable"\} 1/);
  });

  test('fallback on timeout and on overflow: the static answer, labelled', async () => {
    const t = await send('sluggish', '/x');
    assert.equal(t.status, 200);
    assert.equal(t.headers['x-weft-fallback'], 'static');
    assert.equal(t.body, 'static');
    assert.ok(t.ms >= 280 && t.ms < 2000, `${t.ms} ms`);
    const first = send('narrow-fb', '/1');
    await until('the first request upstream', () => up.narrowFb.hits === 1);
    const second = send('narrow-fb', '/2');
    await sleep(50);
    const third = await send('narrow-fb', '/3');
    assert.deepEqual([third.status, third.headers['x-weft-fallback'], third.body], [429, 'static', 'busy']);
    assert.deepEqual((await Promise.all([first, second])).map((r) => r.status), [200, 200]);
  });

  test('streaming timeouts: a healthy long stream runs to the end; a stalled one is cut as an error; a late first byte is 504 UT', async () => {
    const healthy = await send('stream', '/sse/healthy');
    assert.equal(healthy.status, 200);
    assert.match(healthy.body, /data: 14\n\ndata: \[DONE\]/);
    assert.ok(healthy.ms >= 1400, `${healthy.ms} ms`);
    // Cut mid-stream by the idle timeout: Node and curl both see an error, never a clean end.
    await assert.rejects(async () => {
      const r = await request(`http://${weft.edge}/sse/stall`, { headers: { host: 'stream' }, dispatcher: agent });
      assert.equal(r.statusCode, 200);
      await r.body.text();
    });
    const curl = await promisify(execFile)('curl', ['-sS', '-N', '-H', 'Host: stream', `http://${weft.edge}/sse/stall`]).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    assert.ok([18, 56].includes(curl), `curl exit ${curl}`);
    // No first byte within 500 ms: nothing was sent yet, so the caller gets the proxy's 504.
    const late = await send('stream', '/sse/late');
    assert.equal(late.status, 504);
    assert.ok(late.ms < 1000, `${late.ms} ms`);
    await until('the access log lines', async () => {
      const log = await readFile(accessLog, 'utf8');
      return /"path":"\/sse\/stall","status":200,"response_flags":"SI"/.test(log) && /"path":"\/sse\/late","status":504,"response_flags":"UT"/.test(log);
    });
  });

  test('a client that disconnects cancels the upstream within a second', async () => {
    const closed = up.streamer.streamClosed();
    const ac = new AbortController();
    const res = await request(`http://${weft.edge}/forever`, { headers: { host: 'stream' }, signal: ac.signal, dispatcher: agent });
    for await (const _chunk of res.body) break;
    const abortedAt = performance.now();
    ac.abort();
    const at = await Promise.race([closed, sleep(3000).then(() => Infinity)]);
    assert.ok(at - abortedAt < 1000, `upstream still open ${at - abortedAt} ms after the client left`);
  });

  test('connection settings: maxRequestsPerConnection 1 opens a connection per request; connectTimeout answers 503 UF', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await send('oneshot', `/o/${i}`)).status, 200);
    assert.equal(up.oneshot.accepted, 5);
    for (let i = 0; i < 5; i++) assert.equal((await send('keepalive', `/k/${i}`)).status, 200);
    assert.equal(up.keepalive.accepted, 1, 'without the setting, one keep-alive connection');
    // A TLS handshake that never completes: each try gives up after 200 ms (not the default 10 s).
    const r = await send('silent', '/');
    assert.equal(r.status, 503);
    assert.match(r.body, /connection failure/);
    assert.ok(r.ms >= 200 && r.ms < 3000, `${r.ms} ms`);
    await until('the access log line', async () => /"authority":"silent","path":"\/","status":503,"response_flags":"UF/.test(await readFile(accessLog, 'utf8')));
  });

  test('1000 aborted requests leave no open sockets, upstream or in the proxy', async () => {
    const sockets = async () => (await stats()).handles.TCPSocketWrap ?? 0;
    const baseline = await sockets();
    for (let batch = 0; batch < 10; batch++) {
      const seen = up.hangs.hits;
      const acs = Array.from({ length: 100 }, () => new AbortController());
      const pending = acs.map((ac, i) =>
        request(`http://${weft.edge}/hang/${batch}/${i}`, { headers: { host: 'hangs' }, signal: ac.signal }).then(
          (r) => r.body.text(),
          () => undefined,
        ),
      );
      await until('a batch upstream', () => up.hangs.hits >= seen + 100, 10_000);
      for (const ac of acs) ac.abort();
      await Promise.all(pending);
    }
    assert.equal(up.hangs.hits, 1000);
    await until('the upstream connections to close', async () => (await up.hangs.connections()) === 0, 5000);
    await until('the proxy sockets to close', async () => (await sockets()) <= baseline + 2, 5000);
  });
});

/** An upstream for the tests below: counts what reaches it, and closes for good. */
interface Upstream {
  port: number;
  hits: number;
  close(): Promise<void>;
}

async function listen(server: HttpServer, extra: { close?: () => void } = {}): Promise<Upstream> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const u: Upstream = {
    port: (server.address() as AddressInfo).port,
    hits: 0,
    close: () =>
      new Promise<void>((resolve) => {
        extra.close?.();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return u;
}

/**
 * A server-sent event stream that starts well (200, two events) and then: `cut` destroys its
 * connection, `stall` goes silent, `ok` ends cleanly, `forever` ticks until the caller leaves.
 */
async function sseUpstream(kind: 'cut' | 'stall' | 'ok' | 'forever'): Promise<Upstream> {
  const server = createHttpServer((req, res) => {
    u.hits++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: 0\n\n');
    const t = setTimeout(() => {
      res.write('data: 1\n\n');
      if (kind === 'cut') setTimeout(() => req.socket.destroy(), 30);
      else if (kind === 'ok') res.end('data: [DONE]\n\n');
    }, 30);
    const tick = kind === 'forever' ? setInterval(() => res.write('data: tick\n\n'), 20) : undefined;
    res.on('close', () => {
      clearTimeout(t);
      clearInterval(tick);
    });
  });
  const u = await listen(server);
  return u;
}

/** A WebSocket echo (plain HTTP answered 200 too) that drops the connection soon on `/hangup…`; `hits` counts upgrades that reached it. */
async function wsUpstream(): Promise<Upstream> {
  const server = createHttpServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    u.hits++;
    ws.on('message', (m) => ws.send(`echo ${m.toString()}`));
    if (req.url?.startsWith('/hangup')) setTimeout(() => ws.terminate(), 50);
  });
  const u = await listen(server, { close: () => wss.close() });
  return u;
}

/** Refuses every upgrade with a 403 and keeps the connection open (keep-alive) until the caller ends it. */
async function refusingUpstream(): Promise<Upstream> {
  const server = createHttpServer((_req, res) => res.end('plain'));
  server.on('upgrade', (_req, socket) => {
    u.hits++;
    socket.on('error', () => {});
    socket.on('end', () => socket.end());
    socket.write('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n');
  });
  const u = await listen(server);
  return u;
}

describe('circuit limits on WebSocket upgrades, and streams cut after their headers', () => {
  let weft: RunningWeft;
  let accessLog: string;
  let edgeAdmin: string;
  let deadPort: number;
  const up: Record<string, Upstream> = {};

  before(async () => {
    up.ws = await wsUpstream();
    up.wsQueue = await wsUpstream();
    up.wsCut = await wsUpstream();
    up.refuser = await refusingUpstream();
    up.cutter = await sseUpstream('cut');
    up.cutGood = await sseUpstream('ok');
    up.staller = await sseUpstream('stall');
    up.idleGood = await sseUpstream('ok');
    up.abortA = await sseUpstream('forever');
    up.abortB = await sseUpstream('forever');
    deadPort = await freePort();
    const oneRequest = '{connectionPool: {http: {http2MaxRequests: 1}}}';
    const outlier = (n: number) => `{loadBalancer: {simple: ROUND_ROBIN}, outlierDetection: {consecutive5xxErrors: ${n}, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 50}}`;
    const docs = [
      serviceFor('ws-limited', [{ name: 'ws', port: up.ws.port }]),
      dr('ws-limited', oneRequest),
      serviceFor('ws-queue', [{ name: 'ws-queue', port: up.wsQueue.port }]),
      dr('ws-queue', '{connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1}}}'),
      serviceFor('ws-cut', [{ name: 'ws-cut', port: up.wsCut.port }]),
      dr('ws-cut', oneRequest),
      serviceFor('ws-refused', [{ name: 'refuser', port: up.refuser.port }]),
      dr('ws-refused', oneRequest),
      serviceFor('ws-dead', [{ name: 'ws-dead', port: deadPort }]),
      dr('ws-dead', oneRequest),
      serviceFor('cuts', [{ name: 'cutter', port: up.cutter.port }, { name: 'cut-good', port: up.cutGood.port }]),
      dr('cuts', outlier(3)),
      serviceFor('idles', [{ name: 'staller', port: up.staller.port }, { name: 'idle-good', port: up.idleGood.port }]),
      dr('idles', outlier(2)),
      vs('idles', '  - route: [{destination: {host: idles}}]\n', '{weft.dev/idle-timeout: 300ms}'),
      serviceFor('aborts', [{ name: 'abort-a', port: up.abortA.port }, { name: 'abort-b', port: up.abortB.port }]),
      dr('aborts', outlier(2)),
    ];
    ({ weft, accessLog, edgeAdmin } = await weftUpDocs('weft-resilience-ws-', docs));
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    for (const u of Object.values(up)) await u.close();
  });

  interface Stats {
    clusters: Record<string, { circuitBreakers?: { active: number; pending: number; overflow: number } }>;
    ejections: Ejection[];
  }
  const stats = async () => (await (await fetch(`http://${edgeAdmin}/stats`)).json()) as Stats;
  const breakers = async (host: string) => (await stats()).clusters[cluster(host)]?.circuitBreakers;
  const ejectionsOf = async (host: string) => (await stats()).ejections.filter((e) => e.cluster === cluster(host));
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(25);
    }
  };
  const logged = (re: RegExp) => until(`the access log line ${re}`, async () => re.test(await readFile(accessLog, 'utf8')));

  /** `p`, or a failure after `ms` (a regression that leaks a request must fail, not hang). */
  const within = <T>(what: string, p: Promise<T>, ms = 5000): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)));
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };

  /** An upgrade through the edge: the open socket, or the status and headers it was refused with. */
  const upgrade = (host: string, path: string) =>
    within(`the upgrade to ${host}${path}`, new Promise<{ ws?: WsClient; status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
      const ws = new WsClient(`ws://${weft.edge}${path}`, { headers: { host } });
      ws.once('open', () => resolve({ ws, status: 101, headers: {}, body: '' }));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          ws.on('error', () => {});
          ws.terminate();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      });
      ws.once('error', reject);
    }));
  const closed = (ws: WsClient) => within('the socket to close', new Promise<void>((r) => (ws.readyState === WsClient.CLOSED ? r() : ws.once('close', () => r()))));
  const echo = (ws: WsClient, text: string) =>
    new Promise<string>((resolve) => {
      ws.once('message', (m) => resolve(m.toString()));
      ws.send(text);
    });
  const get = async (host: string, path: string) => {
    const r = await request(`http://${weft.edge}${path}`, { headers: { host }, dispatcher: agent });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };

  test('http2MaxRequests 1: an open WebSocket holds the one request; another upgrade or request overflows 503 UO until it closes', async () => {
    const first = await upgrade('ws-limited', '/ws/1');
    assert.equal(first.status, 101);
    assert.equal(await echo(first.ws!, 'hi'), 'echo hi');
    assert.equal((await breakers('ws-limited'))?.active, 1);
    // While it is open: a second upgrade overflows at once, without reaching the upstream ...
    const second = await upgrade('ws-limited', '/ws/2');
    assert.equal(second.status, 503);
    assert.equal(second.headers['x-envoy-overloaded'], 'true');
    assert.match(second.body, /overflow/);
    assert.equal(up.ws.hits, 1);
    // ... and so does a plain request to the same service.
    const plain = await get('ws-limited', '/plain');
    assert.equal(plain.status, 503);
    assert.equal(plain.headers['x-envoy-overloaded'], 'true');
    await logged(/"path":"\/ws\/2","status":503,"response_flags":"UO"/);
    assert.match(
      await (await fetch(`http://${edgeAdmin}/metrics`)).text(),
      /istio_requests_total\{reporter="source",[^}]*destination_service="ws-limited\.default\.svc\.cluster\.local"[^}]*response_code="503",[^}]*response_flags="UO"\} 2/,
    );
    // Closed: released once, and the next upgrade goes through (again and again).
    first.ws!.close();
    await closed(first.ws!);
    await until('the upgrade to release its request', async () => (await breakers('ws-limited'))?.active === 0);
    for (let i = 3; i < 6; i++) {
      const next = await upgrade('ws-limited', `/ws/${i}`);
      assert.equal(next.status, 101, `upgrade ${i}`);
      assert.equal(await echo(next.ws!, `n${i}`), `echo n${i}`);
      next.ws!.close();
      await closed(next.ws!);
      await until('the upgrade to release its request', async () => (await breakers('ws-limited'))?.active === 0);
    }
    assert.equal((await get('ws-limited', '/plain')).status, 200);
    assert.equal(up.ws.hits, 4);
    assert.equal((await breakers('ws-limited'))?.overflow, 2);
  });

  test('maxConnections 1: a second upgrade waits for the first to close, a third overflows; one that gives up while waiting leaves the queue', async () => {
    const first = await upgrade('ws-queue', '/q/1');
    assert.equal(first.status, 101);
    let secondOpen = false;
    const second = upgrade('ws-queue', '/q/2').then((r) => ((secondOpen = r.status === 101), r));
    await until('the second upgrade to queue', async () => (await breakers('ws-queue'))?.pending === 1);
    const third = await upgrade('ws-queue', '/q/3');
    assert.deepEqual([third.status, third.headers['x-envoy-overloaded']], [503, 'true']);
    await sleep(100);
    assert.equal(secondOpen, false);
    assert.equal(up.wsQueue.hits, 1);
    first.ws!.close();
    const s = await within('the queued upgrade', second);
    assert.equal(s.status, 101);
    assert.equal(await echo(s.ws!, 'late'), 'echo late');
    assert.equal(up.wsQueue.hits, 2);
    // A client that leaves while queued (TCP FIN from ws terminate) frees its place; the upstream never sees it.
    const queued = new WsClient(`ws://${weft.edge}/q/4`, { headers: { host: 'ws-queue' } });
    queued.on('error', () => {});
    await until('the fourth upgrade to queue', async () => (await breakers('ws-queue'))?.pending === 1);
    queued.terminate();
    await until('the queue to empty', async () => (await breakers('ws-queue'))?.pending === 0);
    s.ws!.close();
    await closed(s.ws!);
    await until('every upgrade to release', async () => (await breakers('ws-queue'))?.active === 0);
    const fifth = await upgrade('ws-queue', '/q/5');
    assert.equal(fifth.status, 101);
    fifth.ws!.close();
    await closed(fifth.ws!);
    assert.equal(up.wsQueue.hits, 3);
    await until('every upgrade to release', async () => (await breakers('ws-queue'))?.active === 0);
  });

  test('an upgrade releases its request on every way out: connect failure, refused upgrade, client that terminates', async () => {
    // Connection refused (the mesh default retries it): 503 UF, twice — a leak would make the second UO.
    for (const path of ['/d/1', '/d/2']) {
      const r = await upgrade('ws-dead', path);
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-envoy-overloaded'], undefined);
    }
    await logged(/"path":"\/d\/2","status":503,"response_flags":"UF"/);
    assert.equal((await breakers('ws-dead'))?.active, 0);
    // Refused by the upstream (403), which keeps its connection until the caller ends it: released when the caller does.
    for (const path of ['/r/1', '/r/2', '/r/3']) assert.equal((await upgrade('ws-refused', path)).status, 403);
    assert.equal(up.refuser.hits, 3);
    await until('the refused upgrades to release', async () => (await breakers('ws-refused'))?.active === 0);
    // A client that terminates (FIN, no close frame): the upstream hears of it and the request is released.
    for (let i = 0; i < 3; i++) {
      const r = await upgrade('ws-cut', `/c/${i}`);
      assert.equal(r.status, 101, `upgrade ${i}`);
      r.ws!.terminate();
      await until('the terminated upgrade to release', async () => (await breakers('ws-cut'))?.active === 0);
    }
    // The upstream hangs up while the client keeps its end open: released when the upstream closed, not when both have.
    const raw = createConnection({ host: weft.edge.split(':')[0], port: Number(weft.edge.split(':')[1]), allowHalfOpen: true });
    let answer = '';
    raw.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    raw.write('GET /hangup HTTP/1.1\r\nHost: ws-cut\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    await until('the upgrade', () => answer.startsWith('HTTP/1.1 101'));
    await until('the hang-up to release the request', async () => (await breakers('ws-cut'))?.active === 0);
    assert.equal(raw.destroyed, false, 'the client still holds its end');
    raw.destroy();
    assert.equal(up.wsCut.hits, 4);
    assert.equal((await breakers('ws-cut'))?.overflow, 0);
  });

  /** A stream read to its end: whether it broke (an error) after a 200. */
  const readStream = async (host: string, path: string) => {
    const r = await request(`http://${weft.edge}${path}`, { headers: { host }, dispatcher: agent });
    const broke = await r.body.text().then(
      () => false,
      () => true,
    );
    return { status: r.statusCode, broke };
  };

  test('streams cut by the upstream after their headers count: N cut streams in a row eject the endpoint', async () => {
    const seen: Array<{ status: number; broke: boolean }> = [];
    for (let i = 0; i < 20 && up.cutter.hits < 3; i++) seen.push(await readStream('cuts', `/cut/${i}`));
    assert.equal(up.cutter.hits, 3);
    // Every stream started with a 200; the cut ones broke for the caller (never a clean end).
    assert.ok(seen.every((r) => r.status === 200));
    assert.equal(seen.filter((r) => r.broke).length, 3);
    await until('the ejection', async () => (await ejectionsOf('cuts')).length === 1);
    const [ejection] = await ejectionsOf('cuts');
    assert.equal(ejection.endpoint, `127.0.0.1:${up.cutter.port}`);
    assert.equal(ejection.reason, 'consecutive_5xx');
    for (let i = 0; i < 6; i++) assert.deepEqual(await readStream('cuts', `/after/${i}`), { status: 200, broke: false });
    assert.equal(up.cutter.hits, 3);
    await logged(/"path":"\/cut\/\d+","status":200,"response_flags":"UC"/);
  });

  test('the idle timeout cutting a silent stream counts too', async () => {
    for (let i = 0; i < 12 && up.staller.hits < 2; i++) {
      const r = await readStream('idles', `/idle/${i}`);
      assert.equal(r.status, 200);
    }
    assert.equal(up.staller.hits, 2);
    await until('the ejection', async () => (await ejectionsOf('idles')).length === 1);
    assert.equal((await ejectionsOf('idles'))[0].endpoint, `127.0.0.1:${up.staller.port}`);
    for (let i = 0; i < 4; i++) assert.deepEqual(await readStream('idles', `/after/${i}`), { status: 200, broke: false });
    assert.equal(up.staller.hits, 2);
    await logged(/"path":"\/idle\/\d+","status":200,"response_flags":"SI"/);
  });

  test('a client that aborts mid-stream is not the upstream’s fault: no ejection, however often', async () => {
    for (let i = 0; i < 8; i++) {
      const ac = new AbortController();
      const r = await request(`http://${weft.edge}/abort/${i}`, { headers: { host: 'aborts' }, signal: ac.signal, dispatcher: agent });
      assert.equal(r.statusCode, 200);
      for await (const _chunk of r.body) break;
      ac.abort();
      await logged(new RegExp(`"path":"/abort/${i}","status":200,"response_flags":"DC"`));
    }
    assert.equal(up.abortA.hits + up.abortB.hits, 8);
    assert.ok(up.abortA.hits >= 2 && up.abortB.hits >= 2);
    assert.deepEqual(await ejectionsOf('aborts'), []);
  });
});

/** An upstream for upgrades that answers each as `mode` says at the time. */
interface UpgradeUpstream extends Upstream {
  /** `ok`: switch (a WebSocket echo); a status: refuse with it; `drop`: close without a word; `hold`: never answer. */
  mode: 'ok' | 'drop' | 'hold' | number;
}

async function upgradeUpstream(mode: UpgradeUpstream['mode'] = 'ok'): Promise<UpgradeUpstream> {
  const server = createHttpServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ noServer: true });
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req, socket, head) => {
    u.hits++;
    upgraded.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => upgraded.delete(socket));
    const m = u.mode;
    if (m === 'ok') wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d) => ws.send(`echo ${d.toString()}`)));
    else if (m === 'drop') socket.destroy();
    else if (m !== 'hold') socket.end(`HTTP/1.1 ${m} ${STATUS_CODES[m]}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  });
  const u: UpgradeUpstream = Object.assign(
    await listen(server, {
      close: () => {
        for (const s of upgraded) s.destroy();
        wss.close();
      },
    }),
    { mode },
  );
  return u;
}

describe('retries and outlier detection on WebSocket upgrades', () => {
  let weft: RunningWeft;
  let accessLog: string;
  let edgeAdmin: string;
  const up: Record<string, UpgradeUpstream> = {};
  // Accepts and never speaks: a TLS handshake that never ends, so every connect fails at connectTimeout.
  let silent: Server;
  let silentAccepts = 0;

  before(async () => {
    up.flaky = await upgradeUpstream(503);
    up.quiet = await upgradeUpstream('hold');
    up.retried = await upgradeUpstream('ok');
    const deadPort = await freePort(); // nothing listens there: connection refused
    silent = createTcpServer((s) => {
      silentAccepts++;
      s.on('error', () => {});
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const ejectAt = (n: number) => `{outlierDetection: {consecutive5xxErrors: ${n}, interval: 100ms, baseEjectionTime: 30s, maxEjectionPercent: 100}}`;
    const docs = [
      serviceFor('ws-flaky', [{ name: 'flaky', port: up.flaky.port }]),
      dr('ws-flaky', ejectAt(3)),
      serviceFor('ws-quiet', [{ name: 'quiet', port: up.quiet.port }]),
      dr('ws-quiet', ejectAt(2)),
      serviceFor('ws-retry', [{ name: 'silent', port: (silent.address() as AddressInfo).port }]),
      dr('ws-retry', '{tls: {mode: SIMPLE, insecureSkipVerify: true}, connectionPool: {tcp: {connectTimeout: 300ms}, http: {maxRetries: 1}}}'),
      vs('ws-retry', '  - retries: {attempts: 2, retryOn: connect-failure}\n    route: [{destination: {host: ws-retry}}]\n'),
      serviceFor('ws-retried', [{ name: 'refusing', port: deadPort }, { name: 'retried', port: up.retried.port }]),
      dr('ws-retried', '{loadBalancer: {simple: ROUND_ROBIN}, connectionPool: {http: {maxRetries: 1}}}'),
    ];
    ({ weft, accessLog, edgeAdmin } = await weftUpDocs('weft-resilience-ws-retry-', docs));
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    for (const u of Object.values(up)) await u.close();
    silent?.close();
  });

  interface Stats {
    clusters: Record<string, { circuitBreakers?: { retries: number; retryOverflow: number } }>;
    ejections: Ejection[];
  }
  const stats = async () => (await (await fetch(`http://${edgeAdmin}/stats`)).json()) as Stats;
  const ejectionsOf = async (host: string) => (await stats()).ejections.filter((e) => e.cluster === cluster(host));
  const breakers = async (host: string) => (await stats()).clusters[cluster(host)]?.circuitBreakers;
  const until = async (what: string, check: () => Promise<boolean> | boolean, ms = 5000) => {
    const end = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
      await sleep(25);
    }
  };
  /** The access log's flags for `path`, once its line is written. */
  const flagsOf = async (path: string) => {
    const re = new RegExp(`"path":"${path}","status":\\d+,"response_flags":"([^"]*)"`);
    let m: RegExpExecArray | null = null;
    await until(`the access log line of ${path}`, async () => (m = re.exec(await readFile(accessLog, 'utf8'))) !== null);
    return m![1];
  };

  /** An upgrade through the edge: the open socket, or the status and body it was refused with. */
  const upgrade = (host: string, path: string) =>
    new Promise<{ ws?: WsClient; status: number; body: string }>((resolve, reject) => {
      const ws = new WsClient(`ws://${weft.edge}${path}`, { headers: { host } });
      const timer = setTimeout(() => reject(new Error(`timed out waiting for the upgrade to ${host}${path}`)), 5000);
      ws.once('open', () => (clearTimeout(timer), resolve({ ws, status: 101, body: '' })));
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          clearTimeout(timer);
          ws.on('error', () => {});
          ws.terminate();
          resolve({ status: res.statusCode ?? 0, body });
        });
      });
      ws.once('error', (err) => (clearTimeout(timer), reject(err)));
    });

  test('consecutive5xxErrors 3: three 503 answers to upgrades in a row eject the endpoint; a 101 in between resets the count when it comes', async () => {
    const refused = async (path: string) => assert.equal((await upgrade('ws-flaky', path)).status, 503, path);
    await refused('/f/1');
    await refused('/f/2');
    assert.deepEqual(await ejectionsOf('ws-flaky'), [], 'each answer counts once');
    // A switch is a success, counted when the upstream answers — not when the connection closes.
    up.flaky.mode = 'ok';
    const open = await upgrade('ws-flaky', '/f/open');
    assert.equal(open.status, 101);
    up.flaky.mode = 503;
    await refused('/f/3');
    await refused('/f/4');
    assert.deepEqual(await ejectionsOf('ws-flaky'), [], 'the 101 reset the count');
    await refused('/f/5');
    const [ejection] = await ejectionsOf('ws-flaky');
    assert.equal(ejection?.endpoint, `127.0.0.1:${up.flaky.port}`);
    assert.equal(ejection.reason, 'consecutive_5xx');
    // Ejected: the next upgrade is 503 UH without reaching it.
    const next = await upgrade('ws-flaky', '/f/6');
    assert.equal(next.status, 503);
    assert.match(next.body, /no healthy upstream/);
    assert.equal(up.flaky.hits, 6);
    open.ws!.close();
  });

  test('an upstream that closes without answering the upgrade counts as a reset; a client that leaves before the answer does not count', async () => {
    // The upstream holds each upgrade; the client gives up first, three times (more than consecutive5xxErrors 2).
    for (let i = 1; i <= 3; i++) {
      const seen = up.quiet.hits;
      const raw = createConnection({ host: weft.edge.split(':')[0], port: Number(weft.edge.split(':')[1]) });
      raw.on('error', () => {});
      raw.write(`GET /held/${i} HTTP/1.1\r\nHost: ws-quiet\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
      await until('the upgrade to reach the upstream', () => up.quiet.hits === seen + 1);
      raw.end();
      assert.equal(await flagsOf(`/held/${i}`), 'DC');
    }
    assert.deepEqual(await ejectionsOf('ws-quiet'), []);
    // The upstream closes without a word: 503 UC to the caller, and a reset of the endpoint's; two eject it.
    up.quiet.mode = 'drop';
    assert.equal((await upgrade('ws-quiet', '/dropped/1')).status, 503);
    assert.equal(await flagsOf('/dropped/1'), 'UC');
    assert.deepEqual(await ejectionsOf('ws-quiet'), []);
    assert.equal((await upgrade('ws-quiet', '/dropped/2')).status, 503);
    const [ejection] = await ejectionsOf('ws-quiet');
    assert.equal(ejection?.endpoint, `127.0.0.1:${up.quiet.port}`);
    assert.equal(ejection.reason, 'consecutive_5xx');
    assert.equal(up.quiet.hits, 5);
  });

  test('http.maxRetries 1: of two upgrades whose connects fail at once, one retries and the other’s retry is skipped (503 UO,UF); the ticket always comes back', async () => {
    const [a, b] = await Promise.all([upgrade('ws-retry', '/t/a'), upgrade('ws-retry', '/t/b')]);
    assert.deepEqual([a.status, b.status], [503, 503]);
    assert.match(a.body + b.body, /connection failure/);
    // One upgrade made its first try and both retries; the other only its first try.
    assert.equal(silentAccepts, 4);
    assert.deepEqual([await flagsOf('/t/a'), await flagsOf('/t/b')].sort(), ['UF', 'UO,UF']);
    const after = await breakers('ws-retry');
    assert.deepEqual([after?.retries, after?.retryOverflow], [0, 1]);
    // Alone, an upgrade gets both its retries: no ticket was kept.
    assert.equal((await upgrade('ws-retry', '/t/c')).status, 503);
    assert.equal(silentAccepts, 7);
    assert.equal(await flagsOf('/t/c'), 'UF');
    // A client that leaves while its retry is under way gives the ticket back too.
    const leaving = new WsClient(`ws://${weft.edge}/t/d`, { headers: { host: 'ws-retry' } });
    leaving.on('error', () => {});
    await until('the first retry to start', () => silentAccepts === 9);
    leaving.terminate();
    await until('the retry ticket to come back', async () => (await breakers('ws-retry'))?.retries === 0);
    assert.equal(await flagsOf('/t/d'), 'DC');
    assert.equal((await upgrade('ws-retry', '/t/e')).status, 503);
    assert.equal(await flagsOf('/t/e'), 'UF');
    assert.equal((await breakers('ws-retry'))?.retryOverflow, 1);
  });

  test('a retry gives its ticket back when the upstream answers: open WebSockets that needed one do not use up maxRetries', async () => {
    // Round robin over a refusing port and a live endpoint: from the second upgrade on, each is refused first and retried.
    const open: WsClient[] = [];
    for (let i = 1; i <= 3; i++) {
      const r = await upgrade('ws-retried', `/o/${i}`);
      assert.equal(r.status, 101, `upgrade ${i}`);
      open.push(r.ws!);
    }
    assert.equal(up.retried.hits, 3);
    const b = await breakers('ws-retried');
    assert.deepEqual([b?.retries, b?.retryOverflow], [0, 0]);
    for (const ws of open) ws.close();
  });
});
