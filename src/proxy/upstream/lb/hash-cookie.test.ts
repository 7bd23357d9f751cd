// setCookieValue: Envoy's Set-Cookie layout for generated hash cookies.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { setCookieValue } from './hash-cookie.ts';

it('lays out Max-Age, Path, the configured attributes in order, then HttpOnly, as Envoy does', () => {
  const table: Array<[Parameters<typeof setCookieValue>[0], string]> = [
    [{ name: 'sid', ttlSeconds: 3600 }, 'sid=ab12; Max-Age=3600; HttpOnly'],
    [{ name: 'sid', ttlSeconds: 0 }, 'sid=ab12; HttpOnly'], // a session cookie
    [{ name: 'sid', ttlSeconds: 60, path: '/chat' }, 'sid=ab12; Max-Age=60; Path=/chat; HttpOnly'],
    [
      { name: 'sid', ttlSeconds: 60, attributes: [{ name: 'SameSite', value: 'Lax' }, { name: 'Secure' }] },
      'sid=ab12; Max-Age=60; SameSite=Lax; Secure; HttpOnly',
    ],
  ];
  for (const [cookie, expected] of table) assert.equal(setCookieValue(cookie, 'ab12'), expected);
});
