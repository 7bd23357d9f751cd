// Protocols through `weft up`: HTTP/2 cleartext in and out (curl, h2load), gRPC every way through
// edge → sidecar → sidecar → app, WebSocket pass-through, h2UpgradePolicy, and TLS origination
// with ALPN to a server outside the mesh.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, mkdir, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createServer as createH2Server, createSecureServer, type Http2Server, type Http2SecureServer } from 'node:http2';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer, WebSocket as WsClient } from 'ws';
import { weftUp, type RunningWeft } from './helpers/mesh.ts';
import { recorder, type Recorder } from './helpers/recorder.ts';
import { echoService, type EchoReply, type EchoRequest } from './fixtures/grpc/echo.ts';

const run = promisify(execFile);
const GRPC_SERVER = fileURLToPath(new URL('./fixtures/grpc/server.ts', import.meta.url));

/** Every upstream remembers how it was reached. */
interface Seen {
  version: string;
  authority: string;
  alpn?: string | false;
  servername?: string | false;
}

function listen<S extends { listen(port: number, host: string, cb: () => void): unknown; address(): unknown }>(s: S): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

describe('protocols through the mesh', () => {
  let weft: RunningWeft;
  let dir: string;
  let h2c: Http2Server;
  let h1: Recorder;
  let wss: WebSocketServer;
  let tlsH2: Http2SecureServer;
  let tlsH1: HttpsServer;
  let tlsMutual: HttpsServer;
  const seen: Record<string, Seen[]> = { h2c: [], tlsH2: [], tlsH1: [] };
  let echoClient: grpc.Client;
  let relayClient: grpc.Client;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-protocols-'));
    await mkdir(join(dir, 'mesh'));

    // An upstream that speaks only HTTP/2 with prior knowledge.
    h2c = createH2Server((req, res) => {
      seen.h2c.push({ version: req.httpVersion, authority: req.headers[':authority'] ?? '' });
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': 'h2c' });
      res.end(`h2c saw HTTP/${req.httpVersion}`);
    });
    const h2cPort = await listen(h2c);
    h1 = await recorder('h1');

    // WebSocket echo.
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${req.url} via ${req.headers.host}`);
      ws.on('message', (m) => ws.send(`echo ${m.toString()}`));
    });
    const wsPort = (wss.address() as AddressInfo).port;

    // TLS servers outside the mesh: one with h2 and http/1.1 by ALPN, one with http/1.1 only.
    await run('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=llm.example.com',
      '-addext', 'subjectAltName=DNS:llm.example.com,DNS:llm-h1.example.com',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    const key = readFileSync(join(dir, 'key.pem'));
    const cert = readFileSync(join(dir, 'cert.pem'));
    const tlsSeen = (bucket: Seen[]) => (req: { httpVersion: string; headers: Record<string, string | string[] | undefined>; socket: unknown; resume(): void }, res: { writeHead(s: number, h: Record<string, string>): void; end(b: string): void }) => {
      const socket = req.socket as TLSSocket;
      bucket.push({ version: req.httpVersion, authority: String(req.headers[':authority'] ?? req.headers.host), alpn: socket.alpnProtocol ?? false, servername: (socket as TLSSocket & { servername?: string | false }).servername });
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`tls saw HTTP/${req.httpVersion}`);
    };
    tlsH2 = createSecureServer({ key, cert, allowHTTP1: true }, tlsSeen(seen.tlsH2));
    const tlsH2Port = await listen(tlsH2);
    tlsH1 = createHttpsServer({ key, cert }, tlsSeen(seen.tlsH1));
    const tlsH1Port = await listen(tlsH1);
    // A server outside the mesh that requires a client certificate (DestinationRule MUTUAL).
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=weft-client',
      '-keyout', join(dir, 'client-key.pem'), '-out', join(dir, 'client-cert.pem'),
    ]);
    tlsMutual = createHttpsServer({ key, cert, requestCert: true, rejectUnauthorized: true, ca: readFileSync(join(dir, 'client-cert.pem')) }, (req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`mutual saw ${(req.socket as TLSSocket).getPeerCertificate().subject?.CN}`);
    });
    const tlsMutualPort = await listen(tlsMutual);

    const we = (name: string, app: string, port: number) =>
      `apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {name: ${name}}\nspec:\n  address: 127.0.0.1\n  ports: {http2-web: ${port}, http: ${port}}\n  labels: {app: ${app}}\n`;
    const svc = (name: string, port: string) => `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports: [${port}]\n`;
    const docs = [
      // gRPC: the echo service and a relay that calls it through its own sidecar.
      svc('echo-grpc', '{name: grpc, port: 50051}'),
      `apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: echo-grpc}\nspec:\n  labels: {app: echo-grpc, version: v1}\n  command: [node, ${GRPC_SERVER}]\n`,
      svc('relay-grpc', '{name: rpc, port: 50052, appProtocol: grpc}'),
      `apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: relay-grpc}\nspec:\n  labels: {app: relay-grpc, version: v1}\n  command: [node, ${GRPC_SERVER}]\n  env: {BACKEND: "echo-grpc:50051"}\n`,
      // HTTP/2 by port name; HTTP/1.1; an http port upgraded by the DestinationRule.
      svc('h2-model', '{name: http2-web, port: 80}'),
      we('h2-model', 'h2-model', h2cPort),
      svc('h1-model', '{name: http, port: 80}'),
      we('h1-model', 'h1-model', h1.port),
      svc('upgraded', '{name: http, port: 80}'),
      we('upgraded', 'upgraded', h2cPort),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: upgraded}\nspec:\n  host: upgraded\n  trafficPolicy:\n    connectionPool: {http: {h2UpgradePolicy: UPGRADE}}\n`,
      svc('ws-echo', '{name: http, port: 80}'),
      we('ws-echo', 'ws-echo', wsPort),
      // Routes of ws-echo that answer an upgrade themselves.
      `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ws-echo}\nspec:\n  hosts: [ws-echo]\n  http:\n  - match: [{uri: {prefix: /moved}}]\n    redirect: {uri: /here}\n  - match: [{uri: {prefix: /down}}]\n    directResponse: {status: 503, body: {string: down for upgrade}}\n  - route: [{destination: {host: ws-echo}}]\n`,
      // A hosted model API outside the mesh, TLS originated by the mesh.
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: llm}\nspec:\n  hosts: [llm.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: ${tlsH2Port}}}]\n`,
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: llm}\nspec:\n  host: llm.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, caCertificates: ${join(dir, 'cert.pem')}}\n`,
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: llm-h1}\nspec:\n  hosts: [llm-h1.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: ${tlsH1Port}}}]\n`,
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: llm-h1}\nspec:\n  host: llm-h1.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, sni: llm-h1.example.com, caCertificates: ${join(dir, 'cert.pem')}}\n`,
      // The same TLS server, not trusted: the handshake fails, 503 UF.
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: mutual}\nspec:\n  hosts: [mutual.example.com, nocert.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: ${tlsMutualPort}}}]\n`,
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: mutual}\nspec:\n  host: mutual.example.com\n  trafficPolicy:\n    tls: {mode: MUTUAL, sni: llm-h1.example.com, caCertificates: ${join(dir, 'cert.pem')}, clientCertificate: ${join(dir, 'client-cert.pem')}, privateKey: ${join(dir, 'client-key.pem')}}\n`,
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: nocert}\nspec:\n  host: nocert.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE, sni: llm-h1.example.com, caCertificates: ${join(dir, 'cert.pem')}}\n`,
      `apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: untrusted}\nspec:\n  hosts: [untrusted.example.com]\n  ports: [{number: 80, name: http, protocol: HTTP}]\n  resolution: STATIC\n  endpoints: [{address: 127.0.0.1, ports: {http: ${tlsH2Port}}}]\n`,
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: untrusted}\nspec:\n  host: untrusted.example.com\n  trafficPolicy:\n    tls: {mode: SIMPLE}\n`,
    ];
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh')]);

    const { Client } = echoService();
    // Callers outside the mesh reach gRPC services through the edge, naming the service as authority.
    echoClient = new Client(weft.edge, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'echo-grpc:50051' });
    relayClient = new Client(weft.edge, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'relay-grpc:50052' });
  });

  after(async () => {
    echoClient?.close();
    relayClient?.close();
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    await new Promise<void>((r) => h2c.close(() => r()));
    await h1.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
    await new Promise<void>((r) => tlsH2.close(() => r()));
    tlsH1.closeAllConnections();
    await new Promise<void>((r) => tlsH1.close(() => r()));
    tlsMutual.closeAllConnections();
    await new Promise<void>((r) => tlsMutual.close(() => r()));
    await rm(dir, { recursive: true, force: true });
  });

  const curl = async (...args: string[]) => (await run('curl', ['-sS', '--max-time', '10', ...args])).stdout;
  const metricsOf = async (id: string) => {
    const s = await weft.status();
    const admin = s.proxies.find((p) => p.id === id)!.listeners.admin;
    return (await fetch(`http://${admin}/metrics`)).text();
  };

  test('curl --http2-prior-knowledge through the edge to an h2c upstream and to an HTTP/1.1 one', async () => {
    const out = await curl('--http2-prior-knowledge', '-w', '\n%{http_version}', '-H', 'Host: h2-model', `http://${weft.edge}/v1/generate`);
    assert.equal(out, 'h2c saw HTTP/2.0\n2');
    assert.equal(seen.h2c.at(-1)?.authority, 'h2-model');
    const out1 = await curl('--http2-prior-knowledge', '-w', '\n%{http_version}', '-H', 'Host: h1-model', `http://${weft.edge}/v1/generate`);
    const [body, version] = out1.split('\n');
    assert.equal(version, '2');
    assert.equal(JSON.parse(body).name, 'h1');
    assert.equal(h1.seen.at(-1)?.headers.host, 'h1-model');
    // An HTTP/1.1 client reaches the h2c upstream too.
    assert.equal(await curl('--http1.1', '-H', 'Host: h2-model', `http://${weft.edge}/`), 'h2c saw HTTP/2.0');
  });

  test('h2UpgradePolicy: UPGRADE speaks HTTP/2 to an http port', async () => {
    assert.equal(await curl('--http1.1', '-H', 'Host: upgraded', `http://${weft.edge}/`), 'h2c saw HTTP/2.0');
    assert.equal(seen.h2c.at(-1)?.authority, 'upgraded');
  });

  test('h2load: 2000 requests over 10 HTTP/2 connections through the edge, none failed', async () => {
    const { stdout } = await run('h2load', ['-n', '2000', '-c', '10', '-m', '10', '-H', ':authority: h2-model', `http://${weft.edge}/load`], { timeout: 60_000 });
    const m = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
    assert.ok(m, stdout);
    assert.deepEqual(m!.slice(1).map(Number), [2000, 2000, 2000, 2000, 0, 0], stdout);
    assert.match(stdout, /status codes: 2000 2xx/);
  });

  const unary = (client: grpc.Client, method: 'Say' | 'Relay', req: EchoRequest) =>
    new Promise<EchoReply>((resolve, reject) =>
      (client as unknown as Record<string, (r: EchoRequest, cb: grpc.requestCallback<EchoReply>) => void>)[method](req, (err, r) => (err ? reject(err) : resolve(r!))),
    );

  test('gRPC unary through the edge; error statuses arrive as such', async () => {
    const r = await unary(echoClient, 'Say', { text: 'hi' });
    assert.deepEqual({ text: r.text, servedBy: r.servedBy }, { text: 'hi', servedBy: 'echo-grpc' });
    await assert.rejects(unary(echoClient, 'Say', { text: 'x', code: grpc.status.NOT_FOUND }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, 'asked for status 5');
      return true;
    });
  });

  test('gRPC: a trailers-only UNAVAILABLE is retried (mesh default), the call succeeds', async () => {
    const r = await unary(echoClient, 'Say', { text: 'flaky-1', failFirst: 2 });
    assert.equal(r.text, 'flaky-1 after 3 tries');
  });

  test('gRPC server streaming: replies arrive one by one', async () => {
    const call = (echoClient as unknown as { Count(r: object): grpc.ClientReadableStream<EchoReply> }).Count({ n: 5, delayMs: 100 });
    const arrivals: number[] = [];
    const texts: string[] = [];
    for await (const m of call as AsyncIterable<EchoReply>) {
      arrivals.push(performance.now());
      texts.push(m.text);
    }
    assert.deepEqual(texts, ['tick 0', 'tick 1', 'tick 2', 'tick 3', 'tick 4']);
    // Spread over ~400 ms, not delivered in one lump at the end.
    assert.ok(arrivals[4] - arrivals[0] > 250, `replies came within ${arrivals[4] - arrivals[0]} ms`);
  });

  test('gRPC client streaming and bidirectional streaming', async () => {
    const joined = await new Promise<EchoReply>((resolve, reject) => {
      const call = (echoClient as unknown as { Join(cb: grpc.requestCallback<EchoReply>): grpc.ClientWritableStream<EchoRequest> }).Join((err, r) => (err ? reject(err) : resolve(r!)));
      for (const text of ['a', 'b', 'c']) call.write({ text });
      call.end();
    });
    assert.equal(joined.text, 'a b c');

    // Each answer comes back before the next request is sent.
    const chat = (echoClient as unknown as { Chat(): grpc.ClientDuplexStream<EchoRequest, EchoReply> }).Chat();
    const next = () => new Promise<EchoReply>((r) => chat.once('data', r));
    for (const word of ['one', 'two', 'three']) {
      const answer = next();
      chat.write({ text: word });
      assert.equal((await answer).text, `echo ${word}`);
    }
    chat.end();
    await new Promise<void>((r) => chat.on('status', () => r()));
  });

  test('gRPC from app to app: edge → relay sidecar → relay → its sidecar (CONNECT, HTTP/2) → echo sidecar → echo', async () => {
    const r = await unary(relayClient, 'Relay', { text: 'deep' });
    assert.equal(r.text, 'relayed deep from echo-grpc');
    await assert.rejects(unary(relayClient, 'Relay', { text: 'x', code: grpc.status.PERMISSION_DENIED }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.PERMISSION_DENIED);
      return true;
    });
  });

  test('metrics carry grpc_response_status on both sides', async () => {
    const edge = await metricsOf('weft-system/edge');
    assert.match(edge, /istio_requests_total\{reporter="source",[^}]*destination_service="echo-grpc\.default\.svc\.cluster\.local"[^}]*request_protocol="grpc",response_code="200",grpc_response_status="0",[^}]*\} \d+/);
    assert.match(edge, /istio_requests_total\{reporter="source",[^}]*destination_service="echo-grpc\.default\.svc\.cluster\.local"[^}]*response_code="200",grpc_response_status="5",[^}]*\} 1/);
    // The retried UNAVAILABLE answers were never seen downstream: one OK request for flaky-1.
    const server = await metricsOf('default/echo-grpc-0');
    assert.match(server, /istio_requests_total\{reporter="destination",[^}]*grpc_response_status="14",[^}]*\} 2/);
    // The relay's own outbound call to echo, sidecar to sidecar, with the callee's status.
    const relay = await metricsOf('default/relay-grpc-0');
    assert.match(relay, /istio_requests_total\{reporter="source",source_workload="relay-grpc",[^}]*destination_service="echo-grpc\.default\.svc\.cluster\.local"[^}]*grpc_response_status="7",[^}]*\} 1/);
  });

  test('a WebSocket echo through the edge, counted as 101', async () => {
    // The browser-style global WebSocket cannot set Host; ws's client can, as a caller of the edge would.
    const ws = new WsClient(`ws://${weft.edge}/chat?room=1`, { headers: { host: 'ws-echo' } });
    const messages: string[] = [];
    const waiting: Array<() => void> = [];
    ws.on('message', (m) => {
      messages.push(m.toString());
      for (const w of waiting.splice(0)) w();
    });
    const received = async (n: number) => {
      while (messages.length < n) await new Promise<void>((r) => waiting.push(r));
    };
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    await received(1);
    ws.send('ping');
    ws.send('pong');
    await received(3);
    assert.deepEqual(messages, ['hello /chat?room=1 via ws-echo', 'echo ping', 'echo pong']);
    ws.close();
    await new Promise<void>((r) => ws.once('close', () => r()));
    // Counted once the connection closed.
    let edge = '';
    for (let i = 0; i < 50 && !/destination_service="ws-echo[^}]*response_code="101"/.test(edge); i++) {
      await new Promise((r) => setTimeout(r, 50));
      edge = await metricsOf('weft-system/edge');
    }
    assert.match(edge, /istio_requests_total\{reporter="source",[^}]*destination_service="ws-echo\.default\.svc\.cluster\.local"[^}]*response_code="101",[^}]*\} 1/);
  });

  test('a WebSocket upgrade for a host with no route: 404 NR, the connection not upgraded', async () => {
    const ws = new WsClient(`ws://${weft.edge}/`, { headers: { host: 'nowhere' } });
    ws.on('error', () => {});
    const status = await new Promise<number>((resolve) => ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)));
    ws.terminate();
    assert.equal(status, 404);
  });

  test('a WebSocket upgrade to a redirect or a direct response gets that answer, not upgraded', async () => {
    const refused = (path: string) => {
      const ws = new WsClient(`ws://${weft.edge}${path}`, { headers: { host: 'ws-echo' } });
      ws.on('error', () => {});
      return new Promise<{ status: number; location?: string; body: string }>((resolve) =>
        ws.once('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c));
          res.on('end', () => {
            ws.terminate();
            resolve({ status: res.statusCode ?? 0, location: res.headers.location, body });
          });
        }),
      );
    };
    const moved = await refused('/moved');
    assert.equal(moved.status, 301);
    assert.equal(moved.location, 'http://ws-echo/here');
    const down = await refused('/down');
    assert.equal(down.status, 503);
    assert.equal(down.body, 'down for upgrade');
  });

  test('TLS origination (DestinationRule tls SIMPLE): ALPN h2 to a server that offers it, with auto SNI', async () => {
    assert.equal(await curl('-H', 'Host: llm.example.com', `http://${weft.edge}/v1/chat/completions`), 'tls saw HTTP/2.0');
    const s = seen.tlsH2.at(-1)!;
    assert.equal(s.alpn, 'h2');
    assert.equal(s.servername, 'llm.example.com');
    assert.equal(s.authority, 'llm.example.com');
    // An HTTP/2 client too.
    assert.equal(await curl('--http2-prior-knowledge', '-H', 'Host: llm.example.com', `http://${weft.edge}/`), 'tls saw HTTP/2.0');
  });

  test('TLS origination falls back to HTTP/1.1 when the server offers no h2; sni as set', async () => {
    assert.equal(await curl('-H', 'Host: llm-h1.example.com', `http://${weft.edge}/v1/models`), 'tls saw HTTP/1.1');
    const s = seen.tlsH1.at(-1)!;
    assert.equal(s.version, '1.1');
    assert.equal(s.servername, 'llm-h1.example.com');
  });

  test('TLS MUTUAL: the proxy presents the given client certificate; without one the server refuses', async () => {
    assert.equal(await curl('-H', 'Host: mutual.example.com', `http://${weft.edge}/`), 'mutual saw weft-client');
    const out = await curl('-w', '\n%{http_code}', '-H', 'Host: nocert.example.com', `http://${weft.edge}/`);
    assert.match(out, /\n503$/);
  });

  test('a certificate the cluster does not trust fails the connection: 503 UF', async () => {
    const out = await curl('-w', '\n%{http_code}', '-H', 'Host: untrusted.example.com', `http://${weft.edge}/`);
    assert.match(out, /reset reason: connection failure\n\n503$/);
  });
});
