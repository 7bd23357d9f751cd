// Resilience end to end through `weft up`: outlier ejection, circuit limits, fallbacks, streaming
// timeouts and cancellation, against upstreams that fail in each way a model server fails.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { weftUp, freePort, agent, type RunningWeft } from './helpers/mesh.ts';
import { serviceFor } from './helpers/recorder.ts';
import { faulty, type Faulty } from './helpers/faulty.ts';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';

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
    const dir = await mkdtemp(join(tmpdir(), 'weft-resilience-'));
    await mkdir(join(dir, 'mesh'));
    accessLog = join(dir, 'access.log');
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--access-log', accessLog]);
    edgeAdmin = (await weft.status()).proxies.find((p) => p.id === 'weft-system/edge')!.listeners.admin!;
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
