// Refused streams through `weft up`: an HTTP/2 upstream that refuses streams unprocessed
// (RST_STREAM REFUSED_STREAM, or a GOAWAY below the stream) is retried under Istio's mesh default
// (`refused-stream`), POSTs included, and answers 503 `UR` when not retried or out of tries.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { constants, createServer, type Http2Server, type Http2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { weftUp, agent, type RunningWeft } from './helpers/mesh.ts';

/** One stream that reached the upstream: its path, the session (1, 2, … in order opened), what became of it. */
interface Arrival {
  path: string;
  session: number;
  fate: 'refused' | 'goaway' | 'answered';
  bodySha256?: string;
}

/**
 * Paths: `/refuse/<n>/<id>` — the first n streams for the path are reset with REFUSED_STREAM
 * (`all`: every one), then answered; `/goaway/<id>` — the first stream for the path gets a GOAWAY
 * (NO_ERROR) whose last stream id is the one before it, the next is answered.
 */
async function refuser(): Promise<{ server: Http2Server; port: number; arrivals: Arrival[] }> {
  const arrivals: Arrival[] = [];
  const ordinal = new WeakMap<Http2Session, number>();
  let sessions = 0;
  const server = createServer();
  server.on('session', (s) => {
    ordinal.set(s, ++sessions);
    s.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {}); // a stream closed with an error code errors here too
    const path = String(headers[':path']);
    const session = ordinal.get(stream.session!)!;
    const before = arrivals.filter((a) => a.path === path).length;
    const [, kind, n] = path.split('/');
    if (kind === 'refuse' && (n === 'all' || before < Number(n))) {
      arrivals.push({ path, session, fate: 'refused' });
      stream.close(constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (kind === 'goaway' && before === 0) {
      arrivals.push({ path, session, fate: 'goaway' });
      // node takes a last stream id of 0 as "the last one received", so this needs an earlier stream.
      if (stream.id! < 3) {
        stream.respond({ ':status': 500 });
        stream.end('the GOAWAY case needs a stream before it on the session');
        return;
      }
      stream.session!.goaway(constants.NGHTTP2_NO_ERROR, stream.id! - 2);
      return;
    }
    const hash = createHash('sha256');
    stream.on('data', (c: Buffer) => hash.update(c));
    stream.on('end', () => {
      arrivals.push({ path, session, fate: 'answered', bodySha256: hash.digest('hex') });
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(`answered ${path}`);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, arrivals };
}

describe('refused streams through the mesh', () => {
  let weft: RunningWeft;
  let accessLog: string;
  let up: Awaited<ReturnType<typeof refuser>>;

  before(async () => {
    up = await refuser();
    const dir = await mkdtemp(join(tmpdir(), 'weft-refused-'));
    await mkdir(join(dir, 'mesh'));
    accessLog = join(dir, 'access.log');
    const docs = [
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: refuser}\nspec:\n  hosts: [refuser.example.com]\n  ports: [{number: 80, name: http2, protocol: HTTP2}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http2: ${up.port}}}]\n`,
      // No `retries` on the last route: Istio's mesh default (which has refused-stream).
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: refuser}\nspec:\n  hosts: [refuser.example.com]\n  http:\n` +
        `  - match: [{uri: {prefix: /refuse/1/no-refused-stream}}]\n    retries: {attempts: 2, retryOn: "connect-failure,unavailable,cancelled"}\n    route: [{destination: {host: refuser.example.com}}]\n` +
        `  - match: [{uri: {prefix: /refuse/1/on-5xx}}]\n    retries: {attempts: 2, retryOn: 5xx}\n    route: [{destination: {host: refuser.example.com}}]\n` +
        `  - route: [{destination: {host: refuser.example.com}}]\n`,
    ];
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--access-log', accessLog]);
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    up?.server.close();
  });

  const send = async (path: string, body?: Buffer) => {
    const r = await request(`http://${weft.edge}${path}`, { method: body ? 'POST' : 'GET', headers: { host: 'refuser.example.com' }, body, dispatcher: agent });
    return { status: r.statusCode, body: await r.body.text() };
  };
  const arrivalsOf = (path: string) => up.arrivals.filter((a) => a.path === path);
  /** The edge's access log line for `path` (it is written after the answer). */
  const logged = async (path: string): Promise<{ status: number; response_flags: string }> => {
    for (let i = 0; i < 100; i++) {
      const lines = (await readFile(accessLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
      const line = lines.map((l) => JSON.parse(l) as { path: string; proxy: string; status: number; response_flags: string }).find((l) => l.path === path && l.proxy === 'weft-system/edge');
      if (line) return line;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no access log line for ${path}`);
  };

  test('the mesh default retries a refused stream: the caller gets 200, the upstream saw two attempts', async () => {
    const r = await send('/refuse/1/a');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, 'answered /refuse/1/a');
    assert.deepEqual(arrivalsOf('/refuse/1/a').map((a) => a.fate), ['refused', 'answered']);
    assert.equal((await logged('/refuse/1/a')).response_flags, '-');
  });

  test('a refused POST is replayed whole: the server never processed it, so the method does not matter', async () => {
    const body = randomBytes(64 * 1024);
    const r = await send('/refuse/1/post', body);
    assert.equal(r.status, 200, r.body);
    const tries = arrivalsOf('/refuse/1/post');
    assert.deepEqual(tries.map((a) => a.fate), ['refused', 'answered']);
    assert.equal(tries[1]!.bodySha256, createHash('sha256').update(body).digest('hex'));
  });

  test('a stream above a GOAWAY’s last stream id is refused too: retried on a new session', async () => {
    assert.equal((await send('/refuse/0/warm')).status, 200); // a stream before it on the session
    const r = await send('/goaway/b');
    assert.equal(r.status, 200, r.body);
    const tries = arrivalsOf('/goaway/b');
    assert.deepEqual(tries.map((a) => a.fate), ['goaway', 'answered']);
    assert.ok(tries[1]!.session > tries[0]!.session, `the retry came on session ${tries[1]!.session}, the GOAWAY on ${tries[0]!.session}`);
  });

  test('tries run out: 503 with Envoy’s refused-stream body, flags UR and URX', async () => {
    const r = await send('/refuse/all/c');
    assert.equal(r.status, 503);
    assert.match(r.body, /reset reason: remote refused stream reset/);
    assert.equal(arrivalsOf('/refuse/all/c').length, 3, 'one try and the default two retries');
    const line = await logged('/refuse/all/c');
    assert.equal(line.status, 503);
    assert.equal(line.response_flags, 'UR,URX');
  });

  test('retryOn without refused-stream (nor reset, 5xx, gateway-error): not retried, 503 UR', async () => {
    const r = await send('/refuse/1/no-refused-stream');
    assert.equal(r.status, 503);
    assert.deepEqual(arrivalsOf('/refuse/1/no-refused-stream').map((a) => a.fate), ['refused']);
    const line = await logged('/refuse/1/no-refused-stream');
    assert.equal(line.status, 503);
    assert.equal(line.response_flags, 'UR');
  });

  test('retryOn 5xx retries a refused stream, as Envoy retries every reset under 5xx', async () => {
    const r = await send('/refuse/1/on-5xx');
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(arrivalsOf('/refuse/1/on-5xx').map((a) => a.fate), ['refused', 'answered']);
  });
});
