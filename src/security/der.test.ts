import { test } from 'node:test';
import assert from 'node:assert/strict';
import { children, DerError, fromPem, oid, readOid, readOne, seq, time, toPem, unsignedInteger } from './der.ts';

test('OIDs round-trip', () => {
  for (const o of ['1.2.840.10045.4.3.2', '2.5.29.17', '1.3.6.1.5.5.7.3.1', '2.999.3']) assert.equal(readOid(readOne(oid(o))), o);
});

test('INTEGERs are minimal and positive', () => {
  assert.deepEqual([...unsignedInteger(Uint8Array.of(0, 0, 5))], [0x02, 0x01, 0x05]);
  assert.deepEqual([...unsignedInteger(Uint8Array.of(0x80))], [0x02, 0x02, 0x00, 0x80]);
});

test('times: UTCTime before 2050, GeneralizedTime after', () => {
  assert.equal(Buffer.from(time(new Date(Date.UTC(2030, 0, 2, 3, 4, 5, 678)))).subarray(2).toString(), '300102030405Z');
  assert.equal(time(new Date(Date.UTC(2030, 0, 1)))[0], 0x17);
  assert.equal(Buffer.from(time(new Date(Date.UTC(2051, 0, 1)))).subarray(2).toString(), '20510101000000Z');
});

test('the reader accepts DER only', () => {
  const ok = seq(oid('2.5.29.17'));
  assert.equal(children(readOne(ok)).length, 1);
  for (const bad of [[0x30], [0x30, 0x80, 0, 0], [0x30, 0x81, 0x01, 0x00], [0x30, 0x82, 0x00, 0x01, 0x00], [0x30, 0x05, 0x00], [0x1f, 0x01, 0x00], [0x30, 0x00, 0x00], [0x30, 0x85, 1, 1, 1, 1, 1]]) {
    assert.throws(() => children(readOne(Uint8Array.from(bad))), DerError, JSON.stringify(bad));
  }
});

test('PEM round-trips and refuses other labels', () => {
  const der = seq(oid('2.5.29.17'));
  assert.deepEqual(fromPem(toPem('CERTIFICATE', der), ['CERTIFICATE']), der);
  assert.throws(() => fromPem(toPem('PRIVATE KEY', der), ['CERTIFICATE']), DerError);
  assert.throws(() => fromPem('-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----', ['CERTIFICATE']), DerError);
});
