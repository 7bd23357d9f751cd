// Zero trust through `weft up`, checked with real tools: openssl s_client against a STRICT sidecar,
// curl over HTTP/1.1 and HTTP/2 and grpc-js through the edge against AuthorizationPolicies, path
// tricks, the CA asked for someone else's identity, metrics, status; then certificate rotation and
// CA root rotation under load with no failed request.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, mkdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { connect } from 'node:net';
import http2 from 'node:http2';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { weftUp, viaEdge, freePort, WEFT, type RunningWeft } from './helpers/mesh.ts';
import { echoService, type EchoReply, type EchoRequest } from './fixtures/grpc/echo.ts';
import { createRootCA, issuerFromPem, signWorkloadCertificate, type Issuer } from '../src/security/ca.ts';
import { createWorkloadCsr } from '../src/security/csr.ts';

const run = promisify(execFile);
const VERSION_SERVER = fileURLToPath(new URL('./fixtures/apps/version-server.ts', import.meta.url));
const GRPC_SERVER = fileURLToPath(new URL('./fixtures/grpc/server.ts', import.meta.url));
const EDGE = 'spiffe://cluster.local/ns/weft-system/sa/weft-edge';

const service = (name: string, port = '{name: http, port: 80}') =>
  `apiVersion: v1\nkind: Service\nmetadata: {name: ${name}}\nspec:\n  selector: {app: ${name}}\n  ports: [${port}]\n`;
const workload = (name: string, sa: string, extra = '') =>
  `apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: ${name}}\nspec:\n  labels: {app: ${name}, version: v1}\n  serviceAccount: ${sa}\n  command: [node, ${VERSION_SERVER}]\n  env: {VERSION: ${name}}\n${extra}`;
const STRICT = 'apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec:\n  mtls: {mode: STRICT}\n';

/** openssl s_client with `input` on stdin; the whole output, whatever the exit code. */
function sClient(args: string[], input: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** A client certificate (and its key) signed by `issuer` for `spiffeId`, valid in [notBefore, notAfter]. */
async function clientCert(dir: string, name: string, issuer: Issuer, spiffeId: string, notBefore: Date, notAfter: Date): Promise<string[]> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const serial = new Uint8Array(randomBytes(16));
  serial[0] = (serial[0]! & 0x7f) | 1;
  const certPem = signWorkloadCertificate(issuer, { spki, spiffeId, notBefore, notAfter, serial });
  await writeFile(join(dir, `${name}.pem`), certPem);
  await writeFile(join(dir, `${name}.key`), privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  return ['-cert', join(dir, `${name}.pem`), '-key', join(dir, `${name}.key`)];
}

const HOUR = 3_600_000;
const REQUEST = 'GET /hello HTTP/1.1\r\nHost: secure\r\nConnection: close\r\n\r\n';
const HTTP_ANSWER = /HTTP\/1\.1 \d{3}/;

describe('zero trust: mTLS, identities and authorization through weft up', () => {
  let weft: RunningWeft;
  let dir: string;
  let echoClient: grpc.Client;
  let meshRoot: Issuer;
  let permissivePort: number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-security-'));
    await mkdir(join(dir, 'mesh'));
    permissivePort = await freePort();
    const docs = [
      STRICT,
      // secure: anything but /admin (and below) is allowed.
      service('secure'),
      workload('secure', 'secure'),
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: no-admin}\nspec:\n  selector: {matchLabels: {app: secure}}\n  action: DENY\n  rules:\n  - to: [{operation: {paths: [/admin, /admin/*]}}]\n`,
      // locked: only a principal nobody has.
      service('locked'),
      workload('locked', 'locked'),
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: locked}\nspec:\n  selector: {matchLabels: {app: locked}}\n  action: ALLOW\n  rules:\n  - from: [{source: {principals: [cluster.local/ns/default/sa/nobody]}}]\n`,
      // gRPC: the edge may call Say, nothing else.
      service('echo-grpc', '{name: grpc, port: 50051}'),
      `apiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: echo-grpc}\nspec:\n  labels: {app: echo-grpc}\n  serviceAccount: echo\n  command: [node, ${GRPC_SERVER}]\n`,
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: echo-say-only}\nspec:\n  selector: {matchLabels: {app: echo-grpc}}\n  rules:\n  - from: [{source: {principals: ["${EDGE.slice('spiffe://'.length)}"]}}]\n    to: [{operation: {paths: [/weft.test.Echo/Say]}}]\n`,
      // plain: PeerAuthentication DISABLE; callers infer it and send plaintext (auto mTLS).
      service('plain'),
      workload('plain', 'plain'),
      `apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata: {name: plain}\nspec:\n  selector: {matchLabels: {app: plain}}\n  mtls: {mode: DISABLE}\n`,
      // careless: a DestinationRule sends plaintext to a STRICT sidecar, which refuses it.
      service('careless'),
      workload('careless', 'careless'),
      `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: careless}\nspec:\n  host: careless\n  trafficPolicy: {tls: {mode: DISABLE}}\n`,
      // permissive: STRICT for the workload, but its port PERMISSIVE (portLevelMtls wins).
      service('permissive'),
      workload('permissive', 'permissive', `  port: ${permissivePort}\n`),
      `apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: permissive}\nspec:\n  selector: {matchLabels: {app: permissive}}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    "${permissivePort}": {mode: PERMISSIVE}\n`,
    ];
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh')]);
    meshRoot = issuerFromPem(await readFile(join(weft.stateDir, 'ca', 'ca-cert.pem'), 'utf8'), await readFile(join(weft.stateDir, 'ca', 'ca-key.pem'), 'utf8'));
    const { Client } = echoService();
    echoClient = new Client(weft.edge, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'echo-grpc:50051' });
  });

  after(async () => {
    echoClient?.close();
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const proxy = async (workload: string) => (await weft.status()).proxies.find((p) => p.workload === workload)!;
  const curl = async (...args: string[]) => {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--path-as-is', '-o', '-', '-w', '\n%{http_code}', ...args]).catch((e) => e as { stdout: string });
    const i = stdout.lastIndexOf('\n');
    return { body: stdout.slice(0, i), status: Number(stdout.slice(i + 1)) };
  };

  test('the root is created in the state dir with its key mode 0600; every proxy has its identity and certificate', async () => {
    const { stat } = await import('node:fs/promises');
    assert.equal((await stat(join(weft.stateDir, 'ca', 'ca-key.pem'))).mode & 0o777, 0o600);
    const s = await weft.status();
    for (const p of s.proxies) {
      assert.ok(p.certificate, `${p.id} has a certificate`);
      assert.equal(p.certificate!.spiffeId, p.identity);
      const left = new Date(p.certificate!.notAfter).getTime() - Date.now();
      assert.ok(left > 23 * HOUR && left <= 24 * HOUR, `${p.id}: 24 h certificate (${left} ms left)`);
    }
    const { stdout } = await run(process.execPath, [WEFT, 'status', '--state-dir', weft.stateDir]);
    assert.match(stdout, /IDENTITY\s+CERT EXPIRES/);
    assert.match(stdout, /default\/secure-0 .*spiffe:\/\/cluster\.local\/ns\/default\/sa\/secure\s+\d{4}-\d\d-\d\dT[\d:]+Z \(in 2[34]h\d\dm\)/);
  });

  test('openssl s_client against a STRICT sidecar: only a mesh certificate over TLS 1.3 gets in', async () => {
    const inbound = (await proxy('secure')).listeners.inbound!;
    const base = ['-connect', inbound, '-alpn', 'http/1.1', '-quiet'];
    const now = Date.now();
    // A certificate from the mesh root: the positive control.
    const good = await clientCert(dir, 'good', meshRoot, 'spiffe://cluster.local/ns/default/sa/tester', new Date(now - 60_000), new Date(now + HOUR));
    assert.match(await sClient([...base, '-tls1_3', ...good], REQUEST), /HTTP\/1\.1 200/);

    // Plaintext: the connection is reset.
    const plain = await new Promise<string>((resolve) => {
      const s = connect(Number(inbound.split(':')[1]), '127.0.0.1', () => s.write(REQUEST));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code} ${got}`));
      s.on('close', () => resolve(`closed ${got}`));
    });
    assert.match(plain, /^error ECONNRESET $/);

    // No client certificate: TLS 1.3 alert "certificate required", no HTTP.
    const noCert = await sClient([...base], REQUEST);
    assert.doesNotMatch(noCert, HTTP_ANSWER);
    assert.match(noCert, /certificate required/);

    // A certificate from another CA, for a mesh identity.
    const foreign = createRootCA();
    const foreignArgs = await clientCert(dir, 'foreign', foreign.issuer, 'spiffe://cluster.local/ns/default/sa/secure', new Date(now - 60_000), new Date(now + HOUR));
    assert.doesNotMatch(await sClient([...base, ...foreignArgs], REQUEST), HTTP_ANSWER);

    // The mesh root's own certificate, but expired.
    const expired = await clientCert(dir, 'expired', meshRoot, 'spiffe://cluster.local/ns/default/sa/tester', new Date(now - 3 * HOUR), new Date(now - 2 * HOUR));
    assert.doesNotMatch(await sClient([...base, ...expired], REQUEST), HTTP_ANSWER);

    // The mesh root's certificate for another trust domain.
    const otherDomain = await clientCert(dir, 'other', meshRoot, 'spiffe://evil.example/ns/default/sa/tester', new Date(now - 60_000), new Date(now + HOUR));
    assert.doesNotMatch(await sClient([...base, ...otherDomain], REQUEST), HTTP_ANSWER);

    // TLS 1.2 is refused even with a good certificate.
    const tls12 = await sClient([...base, '-tls1_2', ...good], REQUEST);
    assert.doesNotMatch(tls12, HTTP_ANSWER);
    assert.match(tls12, /protocol version|no protocols available/);

    // sslscan, a second opinion: TLS 1.3 only, no legacy protocol, no weak cipher offered.
    const scan = await new Promise<string>((resolve) => {
      const child = spawn('sslscan', ['--no-colour', inbound], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('close', () => resolve(out));
    });
    for (const p of ['SSLv2', 'SSLv3', 'TLSv1.0', 'TLSv1.1', 'TLSv1.2']) assert.match(scan, new RegExp(`${p.replace('.', '\\.')}\\s+disabled`), `${p} in:\n${scan}`);
    assert.match(scan, /TLSv1\.3\s+enabled/);
    assert.doesNotMatch(scan, /(RC4|DES|NULL|EXPORT|anon)[-_A-Z0-9]*\s/, 'no weak cipher suite accepted');

    // The server's own certificate is the workload's SPIFFE identity, from the mesh root.
    await writeFile(join(dir, 'root.pem'), meshRoot.rootCertPem);
    const shown = await sClient(['-connect', inbound, '-alpn', 'h2', '-CAfile', join(dir, 'root.pem'), '-verify_return_error', ...good, '-showcerts'], '', 5000);
    assert.match(shown, /Verify return code: 0 \(ok\)/);
    assert.match(shown, /ALPN protocol: h2/);
    assert.match(shown, /TLSv1\.3/);
    const leaf = shown.slice(shown.indexOf('-----BEGIN CERTIFICATE-----'), shown.indexOf('-----END CERTIFICATE-----') + 25);
    const { X509Certificate } = await import('node:crypto');
    assert.equal(new X509Certificate(leaf).subjectAltName, 'URI:spiffe://cluster.local/ns/default/sa/secure');
  });

  test('PERMISSIVE (portLevelMtls over the workload\'s STRICT) takes plaintext and mTLS on the same port', async () => {
    const inbound = (await proxy('permissive')).listeners.inbound!;
    const r = await curl('--http1.1', '-H', 'Host: permissive', `http://${inbound}/p`);
    assert.equal(r.status, 200);
    const good = await clientCert(dir, 'good2', meshRoot, 'spiffe://cluster.local/ns/default/sa/tester', new Date(Date.now() - 60_000), new Date(Date.now() + HOUR));
    assert.match(await sClient(['-connect', inbound, '-alpn', 'http/1.1', '-quiet', ...good], REQUEST.replace('secure', 'permissive')), /HTTP\/1\.1 200/);
    assert.doesNotMatch(await sClient(['-connect', inbound, '-alpn', 'http/1.1', '-quiet'], REQUEST), HTTP_ANSWER, 'TLS still needs a certificate');
  });

  test('the CA refuses to sign another workload\'s identity for a proxy\'s token', async () => {
    // What a compromised workload could read: its own sidecar's bootstrap token and CA address.
    const env = Object.fromEntries(
      (await readFile(`/proc/${(await proxy('secure')).pid}/environ`, 'utf8'))
        .split('\0')
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
    const ask = (spiffeId: string) =>
      new Promise<{ status: number; body: { code?: string; spiffeId?: string } }>((resolve, reject) => {
        const s = http2.connect(env.WEFT_CA!);
        s.on('error', reject);
        const st = s.request({ ':method': 'POST', ':path': '/v1/certificates', authorization: `Bearer ${env.WEFT_PROXY_TOKEN}` });
        let status = 0;
        let text = '';
        st.on('response', (h) => (status = Number(h[':status'])));
        st.on('data', (c) => (text += c));
        st.on('end', () => {
          s.close();
          resolve({ status, body: JSON.parse(text) });
        });
        st.end(JSON.stringify({ csr: createWorkloadCsr(spiffeId).csrPem }));
      });
    const other = await ask('spiffe://cluster.local/ns/default/sa/locked');
    assert.equal(other.status, 403);
    assert.equal(other.body.code, 'PERMISSION_DENIED');
    const own = await ask('spiffe://cluster.local/ns/default/sa/secure');
    assert.equal(own.status, 200);
    assert.equal(own.body.spiffeId, 'spiffe://cluster.local/ns/default/sa/secure');
  });

  test('allow/deny matrix over HTTP/1.1 and HTTP/2 through the edge', async () => {
    for (const version of ['--http1.1', '--http2-prior-knowledge']) {
      const ok = await curl(version, '-H', 'Host: secure', `http://${weft.edge}/public`);
      assert.equal(ok.status, 200, `${version} ${ok.body}`);
      assert.equal(JSON.parse(ok.body).path, '/public');
      const admin = await curl(version, '-H', 'Host: secure', `http://${weft.edge}/admin`);
      assert.deepEqual(admin, { status: 403, body: 'RBAC: access denied' }, version);
      const locked = await curl(version, '-H', 'Host: locked', `http://${weft.edge}/`);
      assert.deepEqual(locked, { status: 403, body: 'RBAC: access denied' }, version);
      assert.equal((await curl(version, '-H', 'Host: plain', `http://${weft.edge}/`)).status, 200, 'DISABLE: plaintext both ways');
      // tls DISABLE to a STRICT sidecar: the plaintext connection is reset, the caller gets a 503.
      assert.equal((await curl(version, '-H', 'Host: careless', `http://${weft.edge}/`)).status, 503);
    }
  });

  test('allow/deny matrix over gRPC: Say is allowed, Count is denied with PERMISSION_DENIED', async () => {
    const say = await new Promise<EchoReply>((resolve, reject) =>
      (echoClient as unknown as { Say(r: EchoRequest, cb: grpc.requestCallback<EchoReply>): void }).Say({ text: 'hi' }, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    assert.equal(say.text, 'hi');
    const denied = await new Promise<grpc.ServiceError>((resolve) => {
      const call = (echoClient as unknown as { Count(r: object): grpc.ClientReadableStream<EchoReply> }).Count({ n: 3 });
      call.on('data', () => {});
      call.on('error', (e: grpc.ServiceError) => resolve(e));
      call.on('end', () => resolve({ code: grpc.status.OK } as grpc.ServiceError));
    });
    assert.equal(denied.code, grpc.status.PERMISSION_DENIED);
    assert.equal(denied.details, 'RBAC: access denied');
  });

  test('path tricks never get past a rule on /admin; %00 is refused; the app gets the normalised path', async () => {
    const tricks = ['//admin', '/%61dmin', '/./admin', '/x/../admin', '/admin%2Fsecret', '/%2Fadmin', '/admin/', '/admin/./x', '/public/..%2Fadmin', '/%2e/admin'];
    for (const version of ['--http1.1', '--http2-prior-knowledge']) {
      for (const path of tricks) {
        const r = await curl(version, '-H', 'Host: secure', `http://${weft.edge}${path}`);
        assert.equal(r.status, 403, `${version} ${path} → ${r.status} ${r.body}`);
      }
      for (const path of ['/admin%00', '/public%00x', '/p?x=%00']) {
        const r = await curl(version, '-H', 'Host: secure', `http://${weft.edge}${path}`);
        assert.equal(r.status, 400, `${version} ${path} → ${r.status} ${r.body}`);
      }
      // Not /admin: allowed, and the app sees the path as it was authorized.
      const r = await curl(version, '-H', 'Host: secure', `http://${weft.edge}/x/..//%61dministrator/./page`);
      assert.equal(r.status, 200);
      assert.equal(JSON.parse(r.body).path, '/administrator/page');
    }
  });

  test('metrics: mutual_tls and principals from the certificates; none for the plaintext service', async () => {
    for (let i = 0; i < 5; i++) {
      await viaEdge(weft.edge, 'secure', '/m');
      await viaEdge(weft.edge, 'plain', '/m');
    }
    const metrics = async (workload: string) => (await fetch(`http://${(await proxy(workload)).listeners.admin}/metrics`)).text();
    const secure = await metrics('secure');
    assert.match(
      secure,
      /istio_requests_total\{reporter="destination",source_workload="weft-edge",source_workload_namespace="weft-system",source_principal="spiffe:\/\/cluster\.local\/ns\/weft-system\/sa\/weft-edge",[^}]*destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/secure",[^}]*connection_security_policy="mutual_tls",[^}]*response_code="200"/,
    );
    assert.match(secure, /reporter="destination",[^}]*connection_security_policy="mutual_tls",[^}]*response_code="403"/, 'denials are counted');
    const plain = await metrics('plain');
    assert.match(plain, /reporter="destination",source_workload="unknown",source_workload_namespace="unknown",source_principal="unknown",[^}]*destination_principal="unknown",[^}]*connection_security_policy="none",[^}]*response_code="200"/);
    const edge = await (await fetch(`http://${(await proxy('weft-edge')).listeners.admin}/metrics`)).text();
    assert.match(edge, /reporter="source",[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/weft-system\/sa\/weft-edge",[^}]*destination_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/secure",/);
    assert.match(edge, /reporter="source",[^}]*destination_principal="unknown",[^}]*destination_service="plain\.default\.svc\.cluster\.local"/);
  });

  test('a peer header is not believed over plaintext: a caller cannot claim another workload', async () => {
    const inbound = (await proxy('permissive')).listeners.inbound!;
    await curl('--http1.1', '-H', 'Host: permissive', '-H', 'x-weft-peer: admin;default;admin;v9;spiffe%3A%2F%2Fcluster.local%2Fns%2Fdefault%2Fsa%2Fadmin', `http://${inbound}/claim`);
    const metrics = await (await fetch(`http://${(await proxy('permissive')).listeners.admin}/metrics`)).text();
    assert.doesNotMatch(metrics, /source_workload="admin"/);
    assert.doesNotMatch(metrics, /source_principal="spiffe:\/\/cluster\.local\/ns\/default\/sa\/admin"/);
  });
});

describe('rotation under load: workload certificates at half-life, and the CA root', () => {
  let weft: RunningWeft;
  let dir: string;
  let stop = false;
  let oldRoot: Issuer;
  let traffic: Promise<{ counts: Record<string, number>; failures: string[] }>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-rotation-'));
    await mkdir(join(dir, 'mesh'));
    const root = createRootCA();
    oldRoot = root.issuer;
    await writeFile(join(dir, 'ca.pem'), root.certPem);
    await writeFile(join(dir, 'ca.key'), root.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'mesh', 'mesh.yaml'), [STRICT, service('model'), workload('model', 'model', '  replicas: 2\n')].join('---\n'));
    weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--cert-ttl', '10s', '--ca-cert', join(dir, 'ca.pem'), '--ca-key', join(dir, 'ca.key')]);
  });

  after(async () => {
    stop = true;
    await traffic?.catch(() => {});
    if (process.env.WEFT_TEST_DEBUG) process.stderr.write(weft?.proc.output() ?? '');
    if (weft) await weft.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Requests through the edge, 8 at a time, until `stop`: every one must succeed. */
  const keepCalling = async () => {
    const counts: Record<string, number> = {};
    const failures: string[] = [];
    let n = 0;
    const worker = async () => {
      while (!stop) {
        try {
          const r = await viaEdge(weft.edge, 'model', `/r${n++}`);
          if (r.status !== 200) failures.push(`status ${r.status}: ${r.body.slice(0, 200)}`);
          else {
            const v = (JSON.parse(r.body) as { version: string }).version;
            counts[v] = (counts[v] ?? 0) + 1;
          }
        } catch (err) {
          failures.push(String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return { counts, failures };
  };

  test('10 s certificates renew at half-life while requests flow; none fails', async () => {
    const statsOf = async () => {
      const s = await weft.status();
      return Promise.all(s.proxies.map(async (p) => ({ id: p.id, ...((await (await fetch(`http://${p.listeners.admin}/stats`)).json()) as { identity: { serial: string; issued: number; notAfter: string } }) })));
    };
    const before = await statsOf();
    stop = false;
    traffic = keepCalling();
    await new Promise((r) => setTimeout(r, 12_000));
    stop = true;
    const { counts, failures } = await traffic;
    assert.deepEqual(failures, []);
    assert.ok((counts.model ?? 0) > 500, `requests: ${JSON.stringify(counts)}`);
    const after = await statsOf();
    for (const p of after) {
      const was = before.find((b) => b.id === p.id)!;
      assert.ok(p.identity.issued >= was.identity.issued + 2, `${p.id}: ${was.identity.issued} → ${p.identity.issued} certificates`);
      assert.notEqual(p.identity.serial, was.identity.serial);
      const left = new Date(p.identity.notAfter).getTime() - Date.now();
      assert.ok(left > 0 && left <= 10_000, `${p.id}: ${left} ms left`);
    }
  });

  test('replacing the CA files rotates the root: trusted first, then signing, then the old one dropped; none fails', async () => {
    const next = createRootCA();
    stop = false;
    traffic = keepCalling();
    await new Promise((r) => setTimeout(r, 1000));
    await writeFile(join(dir, 'ca.key'), next.keyPem);
    await writeFile(join(dir, 'ca.pem'), next.certPem);
    await weft.proc.waitFor(/CA rotation done/, 90_000);
    await new Promise((r) => setTimeout(r, 2000));
    stop = true;
    const { counts, failures } = await traffic;
    assert.deepEqual(failures, []);
    assert.ok((counts.model ?? 0) > 500, `requests: ${JSON.stringify(counts)}`);
    // A sidecar's certificate now chains to the new root only.
    const inbound = (await weft.status()).proxies.find((p) => p.workload === 'model')!.listeners.inbound!;
    await writeFile(join(dir, 'new-root.pem'), next.certPem);
    const client = await clientCert(dir, 'client', next.issuer, 'spiffe://cluster.local/ns/default/sa/tester', new Date(Date.now() - 60_000), new Date(Date.now() + HOUR));
    const out = await sClient(['-connect', inbound, '-alpn', 'http/1.1', '-CAfile', join(dir, 'new-root.pem'), '-verify_return_error', '-ign_eof', ...client], REQUEST.replace('secure', 'model'));
    assert.match(out, /Verify return code: 0 \(ok\)/);
    assert.match(out, /HTTP\/1\.1 200/);
    // The old root is not trusted any more.
    const stale = await clientCert(dir, 'stale', oldRoot, 'spiffe://cluster.local/ns/default/sa/tester', new Date(Date.now() - 60_000), new Date(Date.now() + HOUR));
    assert.doesNotMatch(await sClient(['-connect', inbound, '-alpn', 'http/1.1', '-quiet', ...stale], REQUEST), HTTP_ANSWER);
  });
});
