import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, ipBytes, parseCidr } from './cidr.ts';

const inBlock = (block: string, address: string) => cidrContains(parseCidr(block)!, ipBytes(address)!);

test('IPv4 and IPv6 blocks', () => {
  assert.ok(inBlock('10.0.0.0/8', '10.255.1.2'));
  assert.ok(!inBlock('10.0.0.0/8', '11.0.0.1'));
  assert.ok(inBlock('192.168.1.7', '192.168.1.7'));
  assert.ok(!inBlock('192.168.1.7', '192.168.1.8'));
  assert.ok(inBlock('0.0.0.0/0', '8.8.8.8'));
  assert.ok(inBlock('10.1.2.0/23', '10.1.3.255') && !inBlock('10.1.2.0/23', '10.1.4.0'));
  assert.ok(inBlock('2001:db8::/32', '2001:db8:ffff::1'));
  assert.ok(!inBlock('2001:db8::/32', '2001:db9::1'));
  assert.ok(inBlock('::1', '::1'));
  assert.ok(inBlock('fe80::/10', 'fe80::1%eth0'));
  assert.ok(!inBlock('10.0.0.0/8', '::1'), 'families never mix');
});

test('IPv4-mapped IPv6 addresses and blocks are IPv4', () => {
  assert.deepEqual([...ipBytes('::ffff:10.1.2.3')!], [10, 1, 2, 3]);
  assert.ok(inBlock('10.0.0.0/8', '::ffff:10.1.2.3'));
  assert.ok(inBlock('::ffff:10.0.0.0/104', '10.1.2.3'));
  assert.ok(inBlock('::ffff:0:0/96', '1.2.3.4'));
});

test('invalid blocks and addresses', () => {
  for (const bad of ['10.0.0.0/33', '10.0.0/8', '::/129', 'fe80::1%eth0/64', '10.0.0.0/', '10.0.0.0/08x', 'host', '']) assert.equal(parseCidr(bad), undefined, bad);
  assert.equal(ipBytes('example.com'), undefined);
});
