// DestinationRule `connectionPool.http.useClientProtocol` through `weft up`: each request reaches an upstream outside the mesh in the protocol it came to the edge in.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { createServer as createH1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createH2cServer } from 'node:http2';
import { weftUp, type RunningWeft } from './helpers/mesh.ts';

const run = promisify(execFile);

const serviceEntry = (host: string, protocol: string, port: number) =>
  `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: ${host.split('.')[0]}}\nspec:\n  hosts: [${host}]\n  ports: [{number: 80, name: web, protocol: ${protocol}}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {web: ${port}}}]\n`;
const clientProtocolRule = (host: string) =>
  `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ${host.split('.')[0]}}\nspec:\n  host: ${host}\n  trafficPolicy:\n    connectionPool: {http: {useClientProtocol: true}}\n`;

describe('useClientProtocol through the mesh', () => {
  let weft: RunningWeft;
  let dir: string;
  let dual: NetServer;
  const h1 = createH1Server((req, res) => answer(req, res));
  const h2c = createH2cServer((req, res) => answer(req as unknown as IncomingMessage, res as unknown as ServerResponse));
  /** Each request that reached the upstream: its host and the HTTP version it arrived in. */
  const seen: Array<{ host: string; version: string }> = [];

  function answer(req: IncomingMessage, res: ServerResponse): void {
    const authority = String(req.headers[':authority'] ?? req.headers.host ?? '');
    seen.push({ host: authority.replace(/:\d+$/, ''), version: req.httpVersion });
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`upstream saw HTTP/${req.httpVersion}`);
  }

  before(async () => {
    // One port that speaks both: the HTTP/2 preface goes to an h2c server, anything else to HTTP/1.1.
    dual = createNetServer((socket) => {
      socket.on('error', () => {});
      socket.once('readable', function sniff() {
        const head: Buffer | null = socket.read(3);
        if (!head) return void socket.once('readable', sniff);
        socket.unshift(head);
        (head.toString('latin1') === 'PRI' ? h2c : h1).emit('connection', socket);
      });
    });
    const port = await new Promise<number>((r) => dual.listen(0, '127.0.0.1', () => r((dual.address() as AddressInfo).port)));

    dir = await mkdtemp(join(tmpdir(), 'weft-client-protocol-'));
    await mkdir(join(dir, 'mesh'));
    const docs = [
      // HTTP port, client protocol kept.
      serviceEntry('keep.example.com', 'HTTP', port),
      clientProtocolRule('keep.example.com'),
      // gRPC port (HTTP/2), client protocol kept: it wins over the port, as in Istio.
      serviceEntry('keep-grpc.example.com', 'GRPC', port),
      clientProtocolRule('keep-grpc.example.com'),
      // The same upstream without the rule: the port's protocol, whatever the client spoke.
      serviceEntry('fixed.example.com', 'HTTP', port),
      serviceEntry('fixed-h2.example.com', 'HTTP2', port),
    ];
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh')]);
  });

  after(async () => {
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    h1.closeAllConnections();
    dual.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** One request through the edge with curl in `mode`; what the client saw and what reached the upstream. */
  const call = async (mode: '--http2-prior-knowledge' | '--http1.1', host: string) => {
    const before = seen.length;
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', mode, '-w', '\n%{http_code} %{http_version}', '-H', `Host: ${host}`, `http://${weft.edge}/v1/rank`]);
    const [body, status] = stdout.split('\n');
    const arrived = seen.slice(before);
    assert.equal(arrived.length, 1, `one request reached the upstream for ${host}: ${JSON.stringify(arrived)}`);
    assert.equal(arrived[0].host, host);
    return { client: status, upstream: arrived[0].version, body };
  };

  test('with useClientProtocol: HTTP/2 clients arrive as HTTP/2, HTTP/1.1 ones as HTTP/1.1, request by request', async () => {
    // Interleaved, so each request is decided on its own (the pools stay open between them).
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await call('--http2-prior-knowledge', 'keep.example.com'), { client: '200 2', upstream: '2.0', body: 'upstream saw HTTP/2.0' });
      assert.deepEqual(await call('--http1.1', 'keep.example.com'), { client: '200 1.1', upstream: '1.1', body: 'upstream saw HTTP/1.1' });
    }
  });

  test('with useClientProtocol on a gRPC (HTTP/2) port: an HTTP/1.1 client still arrives as HTTP/1.1', async () => {
    assert.equal((await call('--http1.1', 'keep-grpc.example.com')).upstream, '1.1');
    assert.equal((await call('--http2-prior-knowledge', 'keep-grpc.example.com')).upstream, '2.0');
  });

  test('without it: both arrive in the cluster protocol (HTTP/1.1 for an http port, HTTP/2 for an http2 port)', async () => {
    assert.equal((await call('--http2-prior-knowledge', 'fixed.example.com')).upstream, '1.1');
    assert.equal((await call('--http1.1', 'fixed.example.com')).upstream, '1.1');
    assert.equal((await call('--http2-prior-knowledge', 'fixed-h2.example.com')).upstream, '2.0');
    assert.equal((await call('--http1.1', 'fixed-h2.example.com')).upstream, '2.0');
  });

  test('concurrent HTTP/2 and HTTP/1.1 clients: every request keeps its protocol', async () => {
    const before = seen.length;
    const modes = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? '--http2-prior-knowledge' : '--http1.1') as '--http2-prior-knowledge' | '--http1.1');
    const outs = await Promise.all(
      modes.map(async (mode) => (await run('curl', ['-sS', '--max-time', '10', mode, '-H', 'Host: keep.example.com', `http://${weft.edge}/c`])).stdout),
    );
    assert.deepEqual(outs, modes.map((m) => (m === '--http1.1' ? 'upstream saw HTTP/1.1' : 'upstream saw HTTP/2.0')));
    const versions = seen.slice(before).map((s) => s.version);
    assert.deepEqual([versions.filter((v) => v === '2.0').length, versions.filter((v) => v === '1.1').length], [10, 10]);
  });
});
