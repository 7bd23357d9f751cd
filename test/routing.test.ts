// Istio's HTTPRoute behaviour end to end through `weft up`: retries, timeouts, fault injection,
// mirrors, rewrites, redirects, header operations and CORS, observed at real upstreams.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';
import { weftUp, freePort, agent, type RunningWeft } from './helpers/mesh.ts';
import { recorder, serviceFor, type Recorder } from './helpers/recorder.ts';

const vs = (host: string, http: string) =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ${host}}\nspec:\n  hosts: [${host}]\n  http:\n${http}`;

describe('HTTPRoute behaviour through the mesh', () => {
  let weft: RunningWeft;
  let accessLog: string;
  const up: Record<string, Recorder> = {};

  before(async () => {
    for (const n of ['flaky', 'alive', 'faulty', 'mirrored', 'shadow', 'rewritten', 'headers', 'cors', 'slow', 'fast', 'productpage', 'hosted-llm', 'kv-a', 'kv-b', 'kv-c', 'a100', 't4']) up[n] = await recorder(n);
    up.hanger = await recorder('hanger', { hangAll: true });
    const deadPort = await freePort(); // nothing listens there: connect failures
    const dir = await mkdtemp(join(tmpdir(), 'weft-routing-'));
    await mkdir(join(dir, 'mesh'));
    accessLog = join(dir, 'access.log');
    const docs = [
      serviceFor('flaky', [{ name: 'flaky', port: up.flaky.port }]),
      vs('flaky', `  - name: three-retries
    match: [{uri: {prefix: /fail/}}]
    retries: {attempts: 3, retryOn: 5xx}
    route: [{destination: {host: flaky}}]
  - name: one-retry
    match: [{uri: {prefix: /one/}}]
    rewrite: {uri: /fail/}
    retries: {attempts: 1, retryOn: "503"}
    route: [{destination: {host: flaky}}]
  - name: default
    route: [{destination: {host: flaky}}]
`),
      serviceFor('dead-or-alive', [{ name: 'dead', port: deadPort }, { name: 'alive', port: up.alive.port }]),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: dead-or-alive}\nspec:\n  host: dead-or-alive\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n`,
      serviceFor('faulty', [{ name: 'faulty', port: up.faulty.port }]),
      vs('faulty', `  - match: [{uri: {exact: /abort}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: faulty}}]
  - match: [{uri: {exact: /delay}}]
    fault: {delay: {fixedDelay: 300ms, percentage: {value: 100}}}
    route: [{destination: {host: faulty}}]
  - match: [{uri: {exact: /never}}]
    fault: {abort: {httpStatus: 500}}
    route: [{destination: {host: faulty}}]
`),
      serviceFor('mirrored', [{ name: 'mirrored', port: up.mirrored.port }]),
      serviceFor('shadow', [{ name: 'shadow', port: up.shadow.port }]),
      vs('mirrored', `  - route: [{destination: {host: mirrored}}]
    mirror: {host: shadow}
`),
      serviceFor('rewritten', [{ name: 'rewritten', port: up.rewritten.port }]),
      vs('rewritten', `  - match: [{uri: {prefix: /v1/}}]
    rewrite: {uri: /models/, authority: model.internal}
    route: [{destination: {host: rewritten}}]
  - match: [{uri: {prefix: /old}}]
    redirect: {uri: /new, authority: example.org}
  - match: [{uri: {regex: "/r/([a-z]+)/([0-9]+)"}}]
    rewrite: {uriRegexRewrite: {match: "/r/([a-z]+)/([0-9]+)", rewrite: "/\\\\2/\\\\1"}}
    route: [{destination: {host: rewritten}}]
`),
      serviceFor('headers', [{ name: 'headers', port: up.headers.port }]),
      vs('headers', `  - headers:
      request: {set: {x-a: "1"}, add: {x-b: "2"}, remove: [x-drop]}
      response: {set: {x-resp: "yes"}, remove: [x-remove-me]}
    route:
    - destination: {host: headers}
      headers: {request: {set: {x-dest: d, x-a: from-destination}}}
`),
      serviceFor('cors', [{ name: 'cors', port: up.cors.port }]),
      vs('cors', `  - corsPolicy:
      allowOrigins: [{exact: "https://app.example"}]
      allowMethods: [POST, GET]
      allowHeaders: [x-session-id]
      maxAge: 1m
    route: [{destination: {host: cors}}]
`),
      serviceFor('slow', [{ name: 'slow', port: up.slow.port }]),
      vs('slow', `  - timeout: 200ms
    route: [{destination: {host: slow}}]
`),
      serviceFor('pertry', [{ name: 'hanger', port: up.hanger.port }, { name: 'fast', port: up.fast.port }]),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: pertry}\nspec:\n  host: pertry\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n`,
      vs('pertry', `  - retries: {attempts: 2, perTryTimeout: 200ms, retryOn: 5xx}
    route: [{destination: {host: pertry}}]
`),
      // A model outside the mesh, by DNS name (what a hosted LLM API looks like to the mesh).
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: hosted-llm}\nspec:\n  hosts: [llm.api.example]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: DNS\n  endpoints: [{address: localhost, ports: {http: ${up['hosted-llm'].port}}}]\n`,
      serviceFor('llm', [{ name: 'kv-a', port: up['kv-a'].port }, { name: 'kv-b', port: up['kv-b'].port }, { name: 'kv-c', port: up['kv-c'].port }]),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: llm}\nspec:\n  host: llm\n  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-session-id, maglev: {tableSize: 65537}}}}\n`,
      serviceFor('gpus', [{ name: 'a100', port: up.a100.port, weight: 3 }, { name: 't4', port: up.t4.port, weight: 1 }]),
      serviceFor('gpus-rr', [{ name: 'a100-rr', port: up.a100.port, weight: 3 }, { name: 't4-rr', port: up.t4.port, weight: 1 }]),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: gpus-rr}\nspec:\n  host: gpus-rr\n  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}\n`,
      serviceFor('productpage', [{ name: 'productpage', port: up.productpage.port }]),
      // Bookinfo's own ingress rules, unchanged but for the port: the edge is the ingress gateway.
      (await readFile(new URL('../../shared/corpus/istio/bookinfo/bookinfo-gateway.yaml', import.meta.url), 'utf8')).replaceAll('number: 9080', 'number: 80'),
    ];
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--access-log', accessLog]);
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    for (const r of Object.values(up)) await r.close();
  });

  const send = async (host: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}) => {
    const r = await request(`http://${weft.edge}${path}`, {
      method: (init.method ?? (init.body ? 'POST' : 'GET')) as 'GET',
      headers: { host, ...init.headers },
      body: init.body,
      dispatcher: agent,
    });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  };
  const triesOf = (r: Recorder, id: string) => r.seen.filter((s) => s.url.endsWith(`/${id}`)).length;

  test('retries: attempts counts retries, observed at the upstream', async () => {
    const ok = await send('flaky', '/fail/2/a');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'flaky try 3');
    assert.equal(triesOf(up.flaky, 'a'), 3);
    // attempts: 1 allows two tries; status codes in retryOn are retriable-status-codes.
    const exhausted = await send('flaky', '/one/2/b');
    assert.equal(exhausted.status, 503);
    assert.equal(triesOf(up.flaky, 'b'), 2);
  });

  test('the mesh default does not retry a 503 (Istio ≥ 1.24)', async () => {
    const before = up.flaky.seen.length;
    const r = await send('flaky', '/status/503');
    assert.equal(r.status, 503);
    assert.equal(up.flaky.seen.length - before, 1);
  });

  test('the mesh default retries connect failures on another endpoint: no request fails', async () => {
    for (let i = 0; i < 40; i++) {
      const r = await send('dead-or-alive', `/x/${i}`);
      assert.equal(r.status, 200, r.body);
    }
    assert.equal(up.alive.seen.length, 40);
  });

  test('a retried POST sends the same body again', async () => {
    const body = randomBytes(200 * 1024);
    const r = await send('flaky', '/fail/1/c', { body });
    assert.equal(r.status, 200);
    const tries = up.flaky.seen.filter((s) => s.url === '/fail/1/c');
    assert.equal(tries.length, 2);
    const want = createHash('sha256').update(body).digest('hex');
    for (const t of tries) assert.equal(t.bodySha256, want);
  });

  test('per-try timeout: a hung endpoint is abandoned and the retry goes to another', async () => {
    for (let i = 0; i < 6; i++) {
      const r = await send('pertry', `/p/${i}`);
      assert.equal(r.status, 200, r.body);
      assert.equal(JSON.parse(r.body).name, 'fast');
    }
    assert.ok(up.hanger.seen.length > 0, 'round robin sent some first tries to the hung endpoint');
  });

  test('route timeout: 504 upstream request timeout', async () => {
    const started = performance.now();
    const r = await send('slow', '/slow/3000');
    assert.equal(r.status, 504);
    assert.match(r.body, /upstream request timeout/);
    assert.ok(performance.now() - started < 2500, 'answered before the upstream did');
  });

  test('fault injection: abort and delay at 100 %, nothing without a percentage', async () => {
    const before = up.faulty.seen.length;
    const abort = await send('faulty', '/abort');
    assert.equal(abort.status, 418);
    assert.equal(up.faulty.seen.length, before, 'an aborted request never reaches the upstream');
    const started = performance.now();
    const delayed = await send('faulty', '/delay');
    assert.equal(delayed.status, 200);
    assert.ok(performance.now() - started >= 280, 'delayed by the injected 300 ms');
    for (let i = 0; i < 20; i++) assert.equal((await send('faulty', '/never')).status, 200);
  });

  test('mirror: a copy reaches the shadow with the -shadow host; the caller gets the primary answer', async () => {
    const r = await send('mirrored', '/m/1', { body: 'prompt text' });
    assert.equal(JSON.parse(r.body).name, 'mirrored');
    const deadline = Date.now() + 3000;
    while (up.shadow.seen.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.equal(up.shadow.seen.length, 1);
    assert.equal(up.shadow.seen[0].headers.host, 'mirrored-shadow');
    assert.equal(up.shadow.seen[0].url, '/m/1');
    assert.equal(up.shadow.seen[0].bodyLength, 'prompt text'.length);
  });

  test('rewrite: the matched prefix and the authority are replaced; regex rewrite substitutes groups', async () => {
    const r = JSON.parse((await send('rewritten', '/v1/sentiment?x=1')).body);
    assert.equal(r.url, '/models/sentiment?x=1');
    assert.equal(r.headers.host, 'model.internal');
    const rr = JSON.parse((await send('rewritten', '/r/abc/42')).body);
    assert.equal(rr.url, '/42/abc');
  });

  test('redirect: 301 with the new location, the upstream never sees it', async () => {
    const r = await send('rewritten', '/old/page?q=2');
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'http://example.org/new?q=2');
  });

  test('header operations: destination level first, then route level; responses edited', async () => {
    const r = await send('headers', '/h', { headers: { 'x-drop': 'gone', 'x-b': '1' } });
    const seen = JSON.parse(r.body).headers;
    assert.equal(seen['x-a'], '1', 'the route-level set comes after the destination-level one');
    assert.equal(seen['x-dest'], 'd');
    assert.equal(seen['x-b'], '1, 2');
    assert.equal(seen['x-drop'], undefined);
    assert.equal(r.headers['x-resp'], 'yes');
    assert.equal(r.headers['x-remove-me'], undefined);
  });

  test('CORS: an allowed preflight is answered by the proxy; a simple request is annotated', async () => {
    const before = up.cors.seen.length;
    const pre = await send('cors', '/c', { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(pre.headers['access-control-allow-methods'], 'POST,GET');
    assert.equal(pre.headers['access-control-max-age'], '60');
    assert.equal(up.cors.seen.length, before);
    const simple = await send('cors', '/c', { headers: { origin: 'https://app.example' } });
    assert.equal(simple.headers['access-control-allow-origin'], 'https://app.example');
    const other = await send('cors', '/c', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
  });

  test('a Gateway selecting the ingress gateway binds its VirtualService to the edge (Bookinfo)', async () => {
    const r = await send('bookinfo.example', '/productpage');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).name, 'productpage');
    const miss = await send('bookinfo.example', '/admin');
    assert.equal(miss.status, 404, 'the gateway rules list the paths they serve');
  });

  test('consistent hash: every request of a session reaches the same replica while the set is stable', async () => {
    const bySession = new Map<string, Set<string>>();
    for (let round = 0; round < 20; round++)
      for (let u = 0; u < 15; u++) {
        const r = await send('llm', '/v1/chat/completions', { headers: { 'x-session-id': `user-${u}` } });
        const name = JSON.parse(r.body).name as string;
        bySession.set(`user-${u}`, (bySession.get(`user-${u}`) ?? new Set()).add(name));
      }
    for (const [session, replicas] of bySession) assert.equal(replicas.size, 1, `${session} went to ${[...replicas]}`);
    const used = new Set([...bySession.values()].flatMap((s) => [...s]));
    assert.ok(used.size >= 2, 'sessions spread over the replicas');
  });

  const shareOfA100 = async (host: string, concurrency: number) => {
    const counts: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < 4000) {
          next++;
          const name = JSON.parse((await send(host, '/infer')).body).name as string;
          counts[name] = (counts[name] ?? 0) + 1;
        }
      }),
    );
    return { share: (counts.a100 ?? 0) / 4000, counts };
  };

  test('endpoint weights (mixed GPUs): 3:1 within ±3 points over 4000 requests', async () => {
    // Weighted round robin holds the ratio under any concurrency.
    const rr = await shareOfA100('gpus-rr', 8);
    assert.ok(Math.abs(rr.share - 0.75) <= 0.03, `ROUND_ROBIN ${JSON.stringify(rr.counts)}`);
    // Weighted least request (Envoy's weight / (active + 1)) gives the ratio when endpoints are
    // idle; under load it also steers by in-flight requests, as Envoy's does.
    const lr = await shareOfA100('gpus', 1);
    assert.ok(Math.abs(lr.share - 0.75) <= 0.03, `LEAST_REQUEST ${JSON.stringify(lr.counts)}`);
  });

  test('a ServiceEntry with DNS resolution reaches a model outside the mesh by name', async () => {
    const r = await send('llm.api.example', '/v1/models');
    assert.equal(r.status, 200, r.body);
    assert.equal(JSON.parse(r.body).name, 'hosted-llm');
  });

  test('trace context and request ids pass through; the edge sets x-forwarded-for and -proto', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const withId = JSON.parse((await send('headers', '/t', { headers: { traceparent, tracestate: 'a=1', 'x-b3-traceid': 'abc', 'x-b3-spanid': 'def', b3: 'abc-def-1', 'x-request-id': 'req-1' } })).body).headers;
    assert.equal(withId.traceparent, traceparent);
    assert.equal(withId.tracestate, 'a=1');
    assert.equal(withId['x-b3-traceid'], 'abc');
    assert.equal(withId.b3, 'abc-def-1');
    assert.equal(withId['x-request-id'], 'req-1', 'an x-request-id is kept');
    assert.equal(withId['x-forwarded-proto'], 'http');
    assert.equal(withId['x-forwarded-for'], '127.0.0.1');
    const generated = JSON.parse((await send('headers', '/t')).body).headers['x-request-id'];
    assert.match(generated, /^[0-9a-f-]{36}$/, 'one is generated when absent');
  });

  test('the access log carries Envoy response flags (URX, FI, DI, UT)', async () => {
    await new Promise((r) => setTimeout(r, 200));
    const lines = (await readFile(accessLog, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { path: string; status: number; response_flags: string; proxy: string });
    const edge = lines.filter((l) => l.proxy === 'weft-system/edge');
    const flagsOf = (path: string) => edge.find((l) => l.path === path)?.response_flags;
    assert.equal(flagsOf('/one/2/b'), 'URX');
    assert.equal(flagsOf('/abort'), 'FI');
    assert.equal(flagsOf('/delay'), 'DI');
    assert.equal(flagsOf('/slow/3000'), 'UT');
    assert.equal(flagsOf('/fail/2/a'), '-');
  });
});
