import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import {
  CaError,
  CertificateAuthority,
  createRootCA,
  DEFAULT_MAX_WORKLOAD_TTL_MS,
  issuerFromPem,
  loadCAFiles,
  loadOrCreateRootCA,
  ROOT_CERT_FILE,
  ROOT_KEY_FILE,
  tokenAuthorizer,
  type CaErrorCode,
  type IssuedCertificate,
} from './ca.ts';
import { createWorkloadCsr, parseCsr } from './csr.ts';
import { toPem } from './der.ts';

const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;
const NO_OPENSSL = HAVE_OPENSSL ? false : 'openssl is not installed on this machine; the cross-check with openssl is skipped';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
const HOUR = 3_600_000;

function setup(options: { defaultTtlMs?: number; maxTtlMs?: number; now?: () => number } = {}) {
  const root = createRootCA({ now: options.now?.() ?? NOW });
  const tokens = tokenAuthorizer();
  const ca = new CertificateAuthority(root.issuer, { authorize: tokens.authorize, now: options.now ?? (() => NOW), ...options });
  const sleepToken = tokens.issue({ namespace: 'default', serviceAccount: 'sleep' });
  return { root, tokens, ca, sleepToken };
}

async function refusal(promise: Promise<unknown>): Promise<CaErrorCode> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof CaError, `expected a CaError, got ${String(e)}`);
    return e.code;
  }
  assert.fail('expected the CA to refuse');
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'weft-ca-'));
}

function openssl(args: string[], cwd: string): string {
  return execFileSync('openssl', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

test('a proxy CSR is signed for the identity its token proves; SAN is the SPIFFE URI', async () => {
  const { ca, sleepToken, root } = setup();
  const { csrPem } = createWorkloadCsr(SLEEP);
  const issued = await ca.sign({ csr: csrPem, credential: sleepToken });
  const cert = new X509Certificate(issued.certPem);
  assert.equal(issued.spiffeId, SLEEP);
  assert.equal(cert.subjectAltName, `URI:${SLEEP}`);
  assert.equal(cert.subject ?? '', '', 'empty subject: the identity is in the SAN');
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(new X509Certificate(root.certPem)));
  assert.ok(cert.verify(new X509Certificate(root.certPem).publicKey));
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(issued.rootCertPem, root.certPem);
  assert.equal(issued.chainPem, issued.certPem, 'signed by the root: no intermediates');
  assert.match(issued.serial, /^[0-9a-f]{32}$/);
});

test('openssl verifies the certificate against the root, for TLS client and server use', { skip: NO_OPENSSL }, async () => {
  const { ca, sleepToken, root } = setup({ now: () => Date.now() });
  const { csrPem } = createWorkloadCsr(SLEEP);
  const dir = tempDir();
  try {
    writeFileSync(join(dir, 'csr.pem'), csrPem);
    openssl(['req', '-in', 'csr.pem', '-noout', '-verify'], dir); // openssl parses our CSR and checks its signature (exit 0)
    const issued = await ca.sign({ csr: csrPem, credential: sleepToken });
    writeFileSync(join(dir, 'root.pem'), root.certPem);
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    assert.match(openssl(['verify', '-CAfile', 'root.pem', 'leaf.pem'], dir), /leaf\.pem: OK/);
    assert.match(openssl(['verify', '-purpose', 'sslserver', '-CAfile', 'root.pem', 'leaf.pem'], dir), /OK/);
    assert.match(openssl(['verify', '-purpose', 'sslclient', '-CAfile', 'root.pem', 'leaf.pem'], dir), /OK/);
    const text = openssl(['x509', '-in', 'leaf.pem', '-noout', '-text'], dir);
    assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep\s/);
    assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
    assert.match(text, /ecdsa-with-SHA256/);
    const rootText = openssl(['x509', '-in', 'root.pem', '-noout', '-text'], dir);
    assert.match(rootText, /CA:TRUE/);
    assert.match(rootText, /Certificate Sign, CRL Sign/);
    assert.match(rootText, /ASN1 OID: prime256v1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('another identity is refused: the CSR must ask for exactly the identity the credential proves', async () => {
  const { ca, sleepToken, tokens } = setup();
  assert.equal(await refusal(ca.sign({ csr: createWorkloadCsr('spiffe://cluster.local/ns/default/sa/admin').csrPem, credential: sleepToken })), 'PERMISSION_DENIED');
  assert.equal(await refusal(ca.sign({ csr: createWorkloadCsr('spiffe://cluster.local/ns/prod/sa/sleep').csrPem, credential: sleepToken })), 'PERMISSION_DENIED');
  assert.equal(await refusal(ca.sign({ csr: createWorkloadCsr('spiffe://evil.org/ns/default/sa/sleep').csrPem, credential: sleepToken })), 'PERMISSION_DENIED', 'another trust domain');
  const prod = tokens.issue({ namespace: 'prod', serviceAccount: 'llm' });
  const ok = await ca.sign({ csr: createWorkloadCsr('spiffe://cluster.local/ns/prod/sa/llm').csrPem, credential: prod });
  assert.equal(ok.spiffeId, 'spiffe://cluster.local/ns/prod/sa/llm');
  try {
    await ca.sign({ csr: createWorkloadCsr('spiffe://cluster.local/ns/default/sa/admin').csrPem, credential: sleepToken });
  } catch (e) {
    assert.match((e as Error).message, /asks for spiffe:\/\/cluster\.local\/ns\/default\/sa\/admin but the caller holds spiffe:\/\/cluster\.local\/ns\/default\/sa\/sleep/);
  }
});

test('unknown, empty, revoked or rejected credentials are refused before the CSR is read', async () => {
  const { ca, sleepToken, tokens, root } = setup();
  const csr = createWorkloadCsr(SLEEP).csrPem;
  assert.equal(await refusal(ca.sign({ csr, credential: 'not-a-token' })), 'UNAUTHENTICATED');
  assert.equal(await refusal(ca.sign({ csr, credential: '' })), 'UNAUTHENTICATED');
  assert.equal(await refusal(ca.sign({ csr: 'garbage', credential: 'not-a-token' })), 'UNAUTHENTICATED');
  tokens.revoke(sleepToken);
  assert.equal(await refusal(ca.sign({ csr, credential: sleepToken })), 'UNAUTHENTICATED');
  const throwing = new CertificateAuthority(root.issuer, { authorize: () => { throw new Error('token review failed'); }, now: () => NOW });
  assert.equal(await refusal(throwing.sign({ csr, credential: 'x' })), 'UNAUTHENTICATED');
  const odd = new CertificateAuthority(root.issuer, { authorize: () => ({ namespace: 5, serviceAccount: 'x' }) as never, now: () => NOW });
  assert.equal(await refusal(odd.sign({ csr, credential: 'x' })), 'PERMISSION_DENIED', 'a broken authorizer result is refused');
  const async = new CertificateAuthority(root.issuer, { authorize: async (t) => (t === 'k8s-token' ? { namespace: 'default', serviceAccount: 'sleep' } : undefined), now: () => NOW });
  assert.equal((await async.sign({ csr, credential: 'k8s-token' })).spiffeId, SLEEP, 'an async authorizer (service-account tokens) fits');
});

test('malformed CSRs are refused with INVALID_CSR, never a crash', async () => {
  const { ca, sleepToken } = setup();
  const good = createWorkloadCsr(SLEEP).csrPem;
  const der = new Uint8Array(Buffer.from(good.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'));
  const cases: unknown[] = [
    '',
    'garbage',
    good.replace('CERTIFICATE REQUEST', 'CERTIFICATE'),
    '-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n',
    toPem('CERTIFICATE REQUEST', der.subarray(0, der.length - 10)),
    toPem('CERTIFICATE REQUEST', Uint8Array.of(0x30, 0x80, 0, 0)),
    toPem('CERTIFICATE REQUEST', Uint8Array.of(0x30, 0x84, 0xff, 0xff, 0xff, 0xff)),
    toPem('CERTIFICATE REQUEST', new Uint8Array(20000)),
    'x'.repeat(1_000_000),
    42,
    undefined,
  ];
  // A flipped bit in the signed part: the signature no longer verifies.
  const tampered = new Uint8Array(der);
  tampered[40] ^= 0x01;
  cases.push(toPem('CERTIFICATE REQUEST', tampered));
  for (const csr of cases) {
    assert.equal(await refusal(ca.sign({ csr: csr as string, credential: sleepToken })), 'INVALID_CSR', String(csr).slice(0, 60));
  }
});

test('random corruption of a CSR only ever yields a CaError', async () => {
  const { ca, sleepToken } = setup();
  const der = new Uint8Array(Buffer.from(createWorkloadCsr(SLEEP).csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64'));
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 300; i++) {
    const bytes = new Uint8Array(der);
    for (let k = 0; k <= rand(4); k++) bytes[rand(bytes.length)] = rand(256);
    const cut = rand(3) === 0 ? bytes.subarray(0, rand(bytes.length)) : bytes;
    try {
      await ca.sign({ csr: toPem('CERTIFICATE REQUEST', cut), credential: sleepToken });
    } catch (e) {
      assert.ok(e instanceof CaError && (e.code === 'INVALID_CSR' || e.code === 'PERMISSION_DENIED'), String(e));
    }
  }
});

test('CSRs made by openssl: RSA keys and extra names are refused, a P-256 SPIFFE CSR is signed', { skip: NO_OPENSSL }, async () => {
  const { ca, sleepToken } = setup();
  const dir = tempDir();
  try {
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rsa.key', '-subj', '/O=x', '-addext', `subjectAltName=URI:${SLEEP}`, '-out', 'rsa.csr'], dir);
    assert.equal(await refusal(ca.sign({ csr: readFileSync(join(dir, 'rsa.csr'), 'utf8'), credential: sleepToken })), 'INVALID_CSR');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes', '-keyout', 'p384.key', '-subj', '/O=x', '-addext', `subjectAltName=URI:${SLEEP}`, '-out', 'p384.csr'], dir);
    assert.equal(await refusal(ca.sign({ csr: readFileSync(join(dir, 'p384.csr'), 'utf8'), credential: sleepToken })), 'INVALID_CSR');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'extra.key', '-subj', '/O=x', '-addext', `subjectAltName=URI:${SLEEP},DNS:admin.example.com`, '-out', 'extra.csr'], dir);
    assert.equal(await refusal(ca.sign({ csr: readFileSync(join(dir, 'extra.csr'), 'utf8'), credential: sleepToken })), 'PERMISSION_DENIED');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'nosan.key', '-subj', '/CN=sleep', '-out', 'nosan.csr'], dir);
    assert.equal(await refusal(ca.sign({ csr: readFileSync(join(dir, 'nosan.csr'), 'utf8'), credential: sleepToken })), 'PERMISSION_DENIED');
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ok.key', '-subj', '/O=anything', '-addext', `subjectAltName=URI:${SLEEP}`, '-out', 'ok.csr'], dir);
    const issued = await ca.sign({ csr: readFileSync(join(dir, 'ok.csr'), 'utf8'), credential: sleepToken });
    assert.equal(new X509Certificate(issued.certPem).subject ?? '', '', 'the CSR subject is not copied');
    assert.deepEqual(parseCsr(readFileSync(join(dir, 'ok.csr'), 'utf8')).uris, [SLEEP]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function lifetime(issued: IssuedCertificate): { notBefore: number; notAfter: number } {
  const cert = new X509Certificate(issued.certPem);
  assert.equal(cert.validToDate.getTime(), issued.notAfter.getTime());
  return { notBefore: cert.validFromDate.getTime(), notAfter: cert.validToDate.getTime() };
}

test('lifetime: 24 h by default, as configured, clamped to the maximum and to at least 10 s', async () => {
  const { ca, sleepToken } = setup();
  const csr = createWorkloadCsr(SLEEP).csrPem;
  const sign = (ttlMs?: number) => ca.sign({ csr, credential: sleepToken, ttlMs });
  assert.equal(lifetime(await sign()).notAfter, NOW + 24 * HOUR);
  assert.equal(lifetime(await sign()).notBefore, NOW - 60_000, 'backdated a minute for clock skew');
  assert.equal(lifetime(await sign(2 * HOUR)).notAfter, NOW + 2 * HOUR);
  assert.equal(lifetime(await sign(365 * 24 * HOUR)).notAfter, NOW + DEFAULT_MAX_WORKLOAD_TTL_MS);
  assert.equal(lifetime(await sign(1)).notAfter, NOW + 10_000);
  assert.equal(lifetime(await sign(-5)).notAfter, NOW + 24 * HOUR);
  assert.equal(lifetime(await sign(Number.NaN)).notAfter, NOW + 24 * HOUR);

  const configured = setup({ defaultTtlMs: 6 * HOUR, maxTtlMs: 12 * HOUR });
  const csr2 = createWorkloadCsr(SLEEP).csrPem;
  assert.equal(lifetime(await configured.ca.sign({ csr: csr2, credential: configured.sleepToken })).notAfter, NOW + 6 * HOUR);
  assert.equal(lifetime(await configured.ca.sign({ csr: csr2, credential: configured.sleepToken, ttlMs: 48 * HOUR })).notAfter, NOW + 12 * HOUR);
  assert.throws(() => new CertificateAuthority(configured.root.issuer, { authorize: () => undefined, defaultTtlMs: 2 * HOUR, maxTtlMs: HOUR }), /invalid certificate lifetimes/);
});

test('a certificate never outlives its CA, and an expired CA refuses to sign', async () => {
  const root = createRootCA({ now: NOW, ttlMs: 2 * HOUR });
  const tokens = tokenAuthorizer();
  const token = tokens.issue({ namespace: 'default', serviceAccount: 'sleep' });
  const csr = createWorkloadCsr(SLEEP).csrPem;
  const ca = new CertificateAuthority(root.issuer, { authorize: tokens.authorize, now: () => NOW });
  assert.equal((await ca.sign({ csr, credential: token })).notAfter.getTime(), NOW + 2 * HOUR);
  const later = new CertificateAuthority(root.issuer, { authorize: tokens.authorize, now: () => NOW + 3 * HOUR });
  assert.equal(await refusal(later.sign({ csr, credential: token })), 'CA_UNAVAILABLE');
});

test('the root is kept in the state dir: key 0600 in a 0700 dir, loaded again on the next start', async () => {
  const base = tempDir();
  const dir = join(base, 'ca');
  try {
    const first = await loadOrCreateRootCA(dir, { trustDomain: 'cluster.local' });
    assert.equal(first.created, true);
    assert.equal(statSync(join(dir, ROOT_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const again = await loadOrCreateRootCA(dir);
    assert.equal(again.created, false);
    assert.equal(again.issuer.rootCertPem, first.issuer.rootCertPem);
    // A loosened key file or directory is tightened again.
    chmodSync(join(dir, ROOT_KEY_FILE), 0o644);
    chmodSync(dir, 0o755);
    await loadOrCreateRootCA(dir);
    assert.equal(statSync(join(dir, ROOT_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    // A key without its certificate (a crash between the writes) is replaced.
    rmSync(join(dir, ROOT_CERT_FILE));
    const replaced = await loadOrCreateRootCA(dir);
    assert.equal(replaced.created, true);
    // A certificate without its key is an error, not a silent new root.
    rmSync(join(dir, ROOT_KEY_FILE));
    await assert.rejects(loadOrCreateRootCA(dir), /exists but .* does not/);
    assert.ok(existsSync(join(dir, ROOT_CERT_FILE)));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

test('a user-supplied root and an intermediate with its chain sign certificates openssl verifies', { skip: NO_OPENSSL }, async () => {
  const dir = tempDir();
  try {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '30', '-subj', '/O=corp/CN=corp root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/O=corp/CN=weft intermediate'], dir);
    writeFileSync(join(dir, 'int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
    openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'int.pem', '-days', '20', '-extfile', 'int.ext'], dir);

    const tokens = tokenAuthorizer();
    const token = tokens.issue({ namespace: 'default', serviceAccount: 'sleep' });
    const csr = createWorkloadCsr(SLEEP).csrPem;

    const rootIssuer = await loadCAFiles({ certFile: join(dir, 'root.pem'), keyFile: join(dir, 'root.key') });
    const byRoot = await new CertificateAuthority(rootIssuer, { authorize: tokens.authorize }).sign({ csr, credential: token });
    writeFileSync(join(dir, 'leaf1.pem'), byRoot.certPem);
    assert.match(openssl(['verify', '-CAfile', 'root.pem', 'leaf1.pem'], dir), /OK/);

    const intIssuer = await loadCAFiles({ certFile: join(dir, 'int.pem'), keyFile: join(dir, 'int.key'), chainFile: join(dir, 'root.pem') });
    const byInt = await new CertificateAuthority(intIssuer, { authorize: tokens.authorize }).sign({ csr, credential: token });
    assert.equal(byInt.rootCertPem, new X509Certificate(readFileSync(join(dir, 'root.pem'))).toString());
    writeFileSync(join(dir, 'chain2.pem'), byInt.chainPem);
    writeFileSync(join(dir, 'leaf2.pem'), byInt.certPem);
    assert.match(openssl(['verify', '-CAfile', 'root.pem', '-untrusted', 'chain2.pem', 'leaf2.pem'], dir), /OK/);
    assert.match(openssl(['x509', '-in', 'leaf2.pem', '-noout', '-text'], dir), /sha256WithRSAEncryption/);

    // Wrong key, not a CA, or a chain that does not reach a root: refused at load.
    await assert.rejects(loadCAFiles({ certFile: join(dir, 'root.pem'), keyFile: join(dir, 'int.key') }), /does not match/);
    await assert.rejects(loadCAFiles({ certFile: join(dir, 'int.pem'), keyFile: join(dir, 'int.key') }), /self-signed root/);
    assert.throws(() => issuerFromPem(byRoot.certPem, readFileSync(join(dir, 'root.key'), 'utf8')), /not a CA/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('two proxies with these certificates complete a TLS 1.3 mutual handshake and see each other’s SPIFFE ID', async () => {
  const { ca, tokens, root } = setup({ now: () => Date.now() });
  const server = createWorkloadCsr('spiffe://cluster.local/ns/prod/sa/llm');
  const client = createWorkloadCsr(SLEEP);
  const serverCert = await ca.sign({ csr: server.csrPem, credential: tokens.issue({ namespace: 'prod', serviceAccount: 'llm' }) });
  const clientCert = await ca.sign({ csr: client.csrPem, credential: tokens.issue({ namespace: 'default', serviceAccount: 'sleep' }) });
  const seen: string[] = [];
  const srv = createServer({ key: server.privateKeyPem, cert: serverCert.chainPem, ca: root.certPem, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (s) => {
    seen.push(s.getPeerCertificate().subjectaltname ?? '');
    s.end('ok');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const port = (srv.address() as AddressInfo).port;
    const body = await new Promise<string>((resolve, reject) => {
      const s: TLSSocket = connect({
        host: '127.0.0.1',
        port,
        key: client.privateKeyPem,
        cert: clientCert.chainPem,
        ca: root.certPem,
        minVersion: 'TLSv1.3',
        checkServerIdentity: (_host, cert) => (cert.subjectaltname === 'URI:spiffe://cluster.local/ns/prod/sa/llm' ? undefined : new Error('wrong peer')),
      });
      let data = '';
      s.on('data', (d) => (data += d));
      s.on('end', () => resolve(data));
      s.on('error', reject);
    });
    assert.equal(body, 'ok');
    assert.deepEqual(seen, [`URI:${SLEEP}`]);
  } finally {
    srv.close();
  }
});
