// The CA endpoint over real HTTP/2, and proxies' identities against it: signing only what a token
// proves, surviving malformed requests, rotation at half-life, and root rotation with an overlap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { X509Certificate } from 'node:crypto';
import { createRootCA, tokenAuthorizer } from '../security/ca.ts';
import { createWorkloadCsr } from '../security/csr.ts';
import { MeshCa, startCaServer, type CaServer } from './ca-server.ts';
import { WorkloadIdentity } from '../proxy/identity.ts';
import { meshListener, type MeshListener } from '../proxy/listener.ts';
import { connectionPeer, meshTlsClient, meshTlsServer } from '../proxy/tls.ts';
import { createUpstream } from '../proxy/upstream/transport.ts';

const A = 'spiffe://cluster.local/ns/default/sa/a';
const B = 'spiffe://cluster.local/ns/default/sa/b';

async function setup(options: { ttlMs?: number } = {}) {
  const root = createRootCA();
  const tokens = tokenAuthorizer();
  const issued: string[] = [];
  const ca = new MeshCa(root.issuer, { authorize: tokens.authorize, defaultTtlMs: options.ttlMs, issued: (_t, c) => issued.push(c.serial) });
  const server = await startCaServer({ host: '127.0.0.1', port: 0 }, ca, () => {});
  const tokenA = tokens.issue({ namespace: 'default', serviceAccount: 'a' });
  const tokenB = tokens.issue({ namespace: 'default', serviceAccount: 'b' });
  return { root, tokens, ca, server, tokenA, tokenB, issued };
}

/** One raw request to the CA: status and parsed JSON body. */
function post(server: CaServer, headers: Record<string, string>, body: string | Buffer): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(server.address);
    s.on('error', reject);
    const st = s.request({ ':method': 'POST', ':path': '/v1/certificates', ...headers });
    let status = 0;
    let text = '';
    st.on('response', (h) => (status = Number(h[':status'])));
    st.on('data', (c) => (text += c));
    st.on('end', () => {
      s.close();
      resolve({ status, body: text ? JSON.parse(text) : {} });
    });
    st.on('error', reject);
    st.end(body);
  });
}

test('the CA signs the identity the token was issued for, and refuses any other', async () => {
  const { server, tokenA, root } = await setup();
  try {
    const own = await post(server, { authorization: `Bearer ${tokenA}` }, JSON.stringify({ csr: createWorkloadCsr(A).csrPem }));
    assert.equal(own.status, 200);
    assert.equal(own.body.spiffeId, A);
    const cert = new X509Certificate(String(own.body.certChain));
    assert.equal(cert.subjectAltName, `URI:${A}`);
    assert.ok(cert.verify(new X509Certificate(root.certPem).publicKey));
    assert.deepEqual(own.body.roots, [root.certPem]);

    // A proxy holding A's token asks for B's identity: refused, and nothing is signed.
    const other = await post(server, { authorization: `Bearer ${tokenA}` }, JSON.stringify({ csr: createWorkloadCsr(B).csrPem }));
    assert.equal(other.status, 403);
    assert.equal(other.body.code, 'PERMISSION_DENIED');
    assert.match(String(other.body.message), /asks for spiffe:\/\/cluster.local\/ns\/default\/sa\/b but the caller holds spiffe:\/\/cluster.local\/ns\/default\/sa\/a/);
  } finally {
    await server.close();
  }
});

test('malformed requests are answered and the CA keeps serving', async () => {
  const { server, tokenA } = await setup();
  try {
    const auth = { authorization: `Bearer ${tokenA}` };
    assert.equal((await post(server, {}, JSON.stringify({ csr: createWorkloadCsr(A).csrPem }))).body.code, 'UNAUTHENTICATED');
    assert.equal((await post(server, { authorization: 'Bearer nope' }, JSON.stringify({ csr: createWorkloadCsr(A).csrPem }))).status, 401);
    assert.equal((await post(server, auth, '{not json')).body.code, 'BAD_REQUEST');
    assert.equal((await post(server, auth, '[]')).body.code, 'BAD_REQUEST');
    assert.equal((await post(server, auth, JSON.stringify({ csr: 42 }))).status, 400);
    assert.equal((await post(server, auth, JSON.stringify({ csr: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }))).body.code, 'INVALID_CSR');
    assert.equal((await post(server, auth, JSON.stringify({ csr: 'x'.repeat(70_000) }))).status, 413);
    assert.equal((await post(server, auth, Buffer.alloc(10_000, 0xff))).status, 400);
    // Still signing.
    assert.equal((await post(server, auth, JSON.stringify({ csr: createWorkloadCsr(A).csrPem }))).status, 200);
  } finally {
    await server.close();
  }
});

/** Two proxies' identities and B's mTLS inbound listener, answering with the verified peer. */
async function pair(server: CaServer, tokenA: string, tokenB: string) {
  const a = new WorkloadIdentity({ ca: server.address, token: tokenA, spiffeId: A, log: () => {} });
  const b = new WorkloadIdentity({ ca: server.address, token: tokenB, spiffeId: B, log: () => {} });
  await Promise.all([a.start(), b.start()]);
  let listener: MeshListener;
  const tls = meshTlsServer(b, (s) => listener.serveTls(s));
  listener = meshListener({ request: (req, res) => res.end(connectionPeer(req.socket).principal) }, { mode: () => 'STRICT', tls });
  const address = await listener.listen('127.0.0.1:0');
  const client = meshTlsClient(a);
  // Every call on a new connection: each one is a handshake with the certificates and roots of the moment.
  const call = async () => {
    const upstream = createUpstream(address, { protocol: 'h2', mtls: { peer: B, client } });
    try {
      const r = await upstream.request({ path: '/', method: 'GET', headers: { host: 'b' } });
      let text = '';
      for await (const c of r.body) text += c;
      return `${r.statusCode} ${text}`;
    } finally {
      await upstream.close();
    }
  };
  return { a, b, listener, call, close: async () => (a.close(), b.close(), await listener.close()) };
}

test('a proxy renews at half-life; requests keep flowing across renewals', async () => {
  const { server, tokenA, tokenB, issued } = await setup({ ttlMs: 10_000 });
  const p = await pair(server, tokenA, tokenB);
  try {
    const first = p.a.status()!;
    const failures: string[] = [];
    const deadline = Date.now() + 6_500; // a 10 s certificate is renewed at about 5 s
    while (Date.now() < deadline) {
      const r = await p.call().catch((e: Error) => e.message);
      if (r !== `200 ${A}`) failures.push(r);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(failures, []);
    const now = p.a.status()!;
    assert.ok(now.issued >= 2, `renewed ${now.issued - 1} time(s)`);
    assert.notEqual(now.serial, first.serial);
    assert.ok(issued.length >= 3);
  } finally {
    await p.close();
    await server.close();
  }
});

test('root rotation: the new root is trusted first, then signs; proxies renew under it; no call fails', async () => {
  const { server, tokenA, tokenB, ca } = await setup();
  const p = await pair(server, tokenA, tokenB);
  try {
    const failures: string[] = [];
    let running = true;
    const loop = (async () => {
      while (running) {
        const r = await p.call().catch((e: Error) => e.message);
        if (r !== `200 ${A}`) failures.push(r);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const next = createRootCA();
    const bundles: string[][] = [];
    // What the control plane does: push the bundle to every proxy (each applies it), then go on.
    const announce = async (bundle: string[]) => {
      bundles.push(bundle);
      p.a.setTrustBundle(bundle);
      p.b.setTrustBundle(bundle);
      await new Promise((r) => setTimeout(r, 300));
    };
    const oldRoot = ca.trustBundle()[0]!;
    await ca.rotate(next.issuer, announce, 500);
    running = false;
    await loop;
    assert.deepEqual(failures, []);
    assert.deepEqual(bundles, [[oldRoot, next.certPem], [next.certPem, oldRoot], [next.certPem]]);
    // Both proxies now hold certificates from the new root.
    for (const id of [p.a, p.b]) {
      const opts = id.contextOptions()!;
      const leaf = new X509Certificate(String(opts.cert));
      assert.ok(leaf.verify(new X509Certificate(next.certPem).publicKey), 'signed under the new root');
      assert.deepEqual(id.roots(), [next.certPem]);
    }
    assert.equal(await p.call(), `200 ${A}`);
  } finally {
    await p.close();
    await server.close();
  }
});
