import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import { ipFamily } from './ip.ts';

const cases = [
  '1.2.3.4', '255.255.255.255', '0.0.0.0', '256.1.1.1', '1.2.3', '1.2.3.4.5', '01.2.3.4', '1.2.3.04', 'a.b.c.d', '',
  '::', '::1', '2001:db8::', '2001:db8::1', 'fe80::1%eth0', 'fe80::1%', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7',
  '::ffff:1.2.3.4', '1::2::3', '12345::', 'g::1', '::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', ':1', '1:', 'reviews', '[::1]',
];

test('ipFamily agrees with node:net isIP', () => {
  for (const c of cases) assert.equal(ipFamily(c), isIP(c), JSON.stringify(c));
});
