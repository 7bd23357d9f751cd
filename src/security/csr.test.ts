import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { createWorkloadCsr, CsrError, parseCsr } from './csr.ts';

const SLEEP = 'spiffe://cluster.local/ns/default/sa/sleep';

test('the proxy makes a P-256 key and a CSR naming only its SPIFFE ID', () => {
  const { privateKey, privateKeyPem, csrPem } = createWorkloadCsr(SLEEP);
  assert.equal(privateKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(createPrivateKey(privateKeyPem).asymmetricKeyType, 'ec');
  assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
  assert.doesNotMatch(csrPem, /PRIVATE KEY/, 'the key never travels with the request');
  const parsed = parseCsr(csrPem);
  assert.deepEqual(parsed.uris, [SLEEP]);
  assert.equal(parsed.otherNames, 0);
  assert.equal(parsed.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  // Each call makes a new key.
  assert.notEqual(createWorkloadCsr(SLEEP).privateKeyPem, privateKeyPem);
});

test('only canonical workload SPIFFE IDs are asked for', () => {
  for (const bad of ['cluster.local/ns/default/sa/sleep', 'spiffe://cluster.local/ns/default', 'spiffe://cluster.local/ns/Default/sa/sleep', 'spiffe://cluster.local/ns/a/sa/b/extra']) {
    assert.throws(() => createWorkloadCsr(bad), /not a workload SPIFFE ID/, bad);
  }
});

test('parseCsr refuses what is not a signed PKCS#10 request', () => {
  assert.throws(() => parseCsr(''), CsrError);
  assert.throws(() => parseCsr(new Uint8Array([0x30, 0x00])), CsrError);
  assert.throws(() => parseCsr(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])), CsrError);
});
