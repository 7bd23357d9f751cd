// Endpoint states for `useClientProtocol` clusters: a pool per protocol, chosen per request, in plaintext and over mTLS to a sidecar.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { createServer as createH1Server } from 'node:http';
import { createServer as createH2cServer, createSecureServer, type Http2SecureServer } from 'node:http2';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterConfig, EndpointConfig, UpstreamProtocol } from '../../wire/snapshot.ts';
import type { MeshTlsClient } from '../tls.ts';
import { EndpointStates, poolFor, type EndpointState } from './endpoints.ts';

const endpoint = (port: number, sidecar = false): EndpointConfig => ({
  host: '127.0.0.1', port, weight: 1, workload: 'm', namespace: 'default', app: 'm', version: 'v1', identity: 'spiffe://cluster.local/ns/default/sa/m', sidecar,
});
const cluster = (port: number, extra: Partial<ClusterConfig> = {}, sidecar = false): ClusterConfig => ({
  name: 'outbound|80||m.default.svc.cluster.local',
  service: { host: 'm.default.svc.cluster.local', name: 'm', namespace: 'default', port: 80 },
  lb: { simple: 'ROUND_ROBIN' },
  protocol: 'http1',
  endpoints: [endpoint(port, sidecar)],
  ...extra,
});

/** Answers with the HTTP version the request arrived in. */
const versionEcho = (req: { httpVersion: string; resume(): void }, res: { end(body: string): void }) => {
  req.resume();
  res.end(req.httpVersion);
};

/** What one request through the state's pool for `clientProtocol` arrived as. */
async function versionVia(state: EndpointState, clientProtocol: UpstreamProtocol): Promise<string> {
  const r = await poolFor(state, clientProtocol).request({ path: '/', method: 'GET', headers: { host: 'm' } });
  let text = '';
  for await (const chunk of r.body) text += String(chunk);
  return text;
}

describe('poolFor', () => {
  it('a fixed-protocol cluster has one pool for every request', () => {
    const states = new EndpointStates();
    const s = states.forEndpoint(cluster(1), endpoint(1));
    assert.equal(s.h2Pool, undefined);
    assert.equal(poolFor(s, 'h2'), s.pool);
    assert.equal(poolFor(s, 'http1'), s.pool);
    void states.closeAll();
  });

  it('a useClientProtocol cluster: two pools, its own state (not a fixed cluster\'s), kept across snapshots', async () => {
    const states = new EndpointStates();
    const fixed = states.forEndpoint(cluster(1), endpoint(1));
    const s = states.forEndpoint(cluster(1, { useClientProtocol: true }), endpoint(1));
    assert.notEqual(s, fixed);
    assert.notEqual(s.id, fixed.id);
    assert.equal(s.key, '127.0.0.1:1');
    assert.ok(s.h2Pool && s.h2Pool !== s.pool);
    assert.equal(poolFor(s, 'h2'), s.h2Pool);
    assert.equal(poolFor(s, 'http1'), s.pool);
    // The HTTP/1.1 transport is the state's (WebSocket upgrades dial with it).
    assert.equal(s.transport.protocol, 'http1');
    assert.equal(states.forEndpoint(cluster(1, { useClientProtocol: true }), endpoint(1)), s);
    states.retain(new Set([fixed.id, s.id]));
    assert.equal(states.forEndpoint(cluster(1, { useClientProtocol: true }), endpoint(1)), s);
    await states.closeAll();
  });
});

describe('useClientProtocol over the wire', () => {
  let dual: NetServer;
  let dualPort: number;
  let tlsServer: Http2SecureServer;
  let tlsPort: number;
  let dir: string;
  const offered: string[][] = [];
  let mesh: MeshTlsClient;

  before(async () => {
    // One port, both protocols: the HTTP/2 preface goes to an h2c server, anything else to HTTP/1.1.
    const h1 = createH1Server(versionEcho);
    const h2c = createH2cServer(versionEcho);
    dual = createNetServer((socket) => {
      socket.once('readable', function sniff() {
        const head: Buffer | null = socket.read(3);
        if (!head) return void socket.once('readable', sniff);
        socket.unshift(head);
        (head.toString('latin1') === 'PRI' ? h2c : h1).emit('connection', socket);
      });
    });
    dualPort = await new Promise((r) => dual.listen(0, '127.0.0.1', () => r((dual.address() as AddressInfo).port)));

    // A sidecar's inbound side as far as ALPN goes: h2 when offered, else HTTP/1.1.
    dir = await mkdtemp(join(tmpdir(), 'weft-endpoints-'));
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=m',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    ]);
    tlsServer = createSecureServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')), allowHTTP1: true }, (req, res) => {
      req.resume();
      res.end(`${req.httpVersion} ${(req.socket as TLSSocket).alpnProtocol}`);
    });
    tlsPort = await new Promise((r) => tlsServer.listen(0, '127.0.0.1', () => r((tlsServer.address() as AddressInfo).port)));
    // Stands in for the workload certificate's client: records what each connection offers.
    mesh = {
      connect(host, port, alpn) {
        offered.push([...alpn]);
        return tlsConnect({ host, port, ALPNProtocols: alpn, rejectUnauthorized: false });
      },
    };
  });

  after(async () => {
    dual.close();
    tlsServer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('plaintext: each request arrives in its own protocol; a fixed cluster sends its protocol', async () => {
    const states = new EndpointStates();
    try {
      const s = states.forEndpoint(cluster(dualPort, { useClientProtocol: true }), endpoint(dualPort));
      assert.equal(await versionVia(s, 'h2'), '2.0');
      assert.equal(await versionVia(s, 'http1'), '1.1');
      // A gRPC-port cluster (protocol h2) with useClientProtocol: an HTTP/1.1 request stays HTTP/1.1 (Istio).
      // The port's protocol does not change how either pool speaks, so such clusters share the state.
      const g = states.forEndpoint(cluster(dualPort, { protocol: 'h2', useClientProtocol: true }), endpoint(dualPort));
      assert.equal(g, s);
      assert.equal(await versionVia(g, 'http1'), '1.1');
      const h1 = states.forEndpoint(cluster(dualPort), endpoint(dualPort));
      assert.deepEqual([await versionVia(h1, 'h2'), await versionVia(h1, 'http1')], ['1.1', '1.1']);
      const h2 = states.forEndpoint(cluster(dualPort, { protocol: 'h2' }), endpoint(dualPort));
      assert.deepEqual([await versionVia(h2, 'h2'), await versionVia(h2, 'http1')], ['2.0', '2.0']);
      // Dropped from the snapshot: both of its pools are closed, and a new state replaces it.
      states.retain(new Set([h1.id, h2.id]));
      await assert.rejects(versionVia(s, 'h2'));
      await assert.rejects(versionVia(s, 'http1'));
      assert.equal(await versionVia(h2, 'http1'), '2.0');
      assert.notEqual(states.forEndpoint(cluster(dualPort, { useClientProtocol: true }), endpoint(dualPort)), s);
    } finally {
      await states.closeAll();
    }
  });

  it('mTLS to a sidecar: HTTP/1.1 offers only http/1.1 (the peer would pick h2), HTTP/2 only h2', async () => {
    const states = new EndpointStates();
    states.tls.mesh = mesh;
    try {
      // An HTTP/1.1 cluster's hop is HTTP/1.1, as Istio's (h2UpgradePolicy: UPGRADE makes the cluster h2).
      const fixed = states.forEndpoint(cluster(tlsPort, {}, true), endpoint(tlsPort, true));
      assert.ok(fixed.transport.mtls);
      offered.length = 0;
      assert.equal(await versionVia(fixed, 'h2'), '1.1 http/1.1');
      assert.ok(offered.length >= 1 && offered.every((o) => o.length === 1 && o[0] === 'http/1.1'), JSON.stringify(offered));
      const upgraded = states.forEndpoint(cluster(tlsPort, { protocol: 'h2' }, true), endpoint(tlsPort, true));
      offered.length = 0;
      assert.equal(await versionVia(upgraded, 'http1'), '2.0 h2');
      assert.deepEqual(offered, [['h2']]);

      const s = states.forEndpoint(cluster(tlsPort, { useClientProtocol: true }, true), endpoint(tlsPort, true));
      assert.ok(s.transport.mtls);
      offered.length = 0;
      assert.equal(await versionVia(s, 'http1'), '1.1 http/1.1');
      assert.equal(await versionVia(s, 'h2'), '2.0 h2');
      // Every connection offered just the one protocol.
      assert.ok(offered.length >= 2);
      for (const o of offered) assert.ok(o.length === 1 && (o[0] === 'http/1.1' || o[0] === 'h2'), JSON.stringify(offered));
      assert.deepEqual(new Set(offered.map((o) => o[0])), new Set(['http/1.1', 'h2']));
    } finally {
      await states.closeAll();
    }
  });
});
