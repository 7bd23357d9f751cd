import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_PATH_NORMALIZATION, normalizePath, type PathNormalization } from './path.ts';

// Istio's own expectations for each meshConfig.pathNormalization option (its security
// normalization integration test: the path the backend receives after the sidecar).
const ISTIO_CASES: Record<PathNormalization, Array<[string, string]>> = {
  NONE: [
    ['/', '/'],
    ['/app#foo', '/app'],
    ['/app/', '/app/'],
    ['/app/../admin', '/app/../admin'],
    ['/app//', '/app//'],
    ['/app/%2f', '/app/%2f'],
    ['/xyz%30..//abc', '/xyz%30..//abc'],
    ['/app/%2E./admin', '/app/%2E./admin'],
    ['/app\\admin', '/app\\admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/app//../admin', '/app//../admin'],
  ],
  BASE: [
    ['/', '/'],
    ['/app#foo', '/app'],
    ['/app/', '/app/'],
    ['/app/../admin', '/admin'],
    ['/app', '/app'],
    ['/app//', '/app//'],
    ['/app/%2f', '/app/%2f'],
    ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz0..//abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app//////admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
  ],
  MERGE_SLASHES: [
    ['/', '/'],
    ['/app#foo', '/app'],
    ['/app/../admin', '/admin'],
    ['/app//', '/app/'],
    ['/app/%2f', '/app/%2f'],
    ['/app%2f/', '/app%2f/'],
    ['/xyz%30..//abc', '/xyz0../abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app/admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/%2Fapp%5cadmin%5Cabc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/%5Capp%2f%5c%2F..%2fadmin%5c/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
  ],
  DECODE_AND_MERGE_SLASHES: [
    ['/', '/'],
    ['/app#foo', '/app'],
    ['/app/', '/app/'],
    ['/app/../admin', '/admin'],
    ['/app', '/app'],
    ['/app//', '/app/'],
    ['/app/%2f', '/app/'],
    ['/app%2f/', '/app/'],
    ['/xyz%30..//abc', '/xyz0../abc'],
    ['/app/%2E./admin', '/admin'],
    ['/app\\admin', '/app/admin'],
    ['/app/\\/\\/\\admin', '/app/admin'],
    ['/%2Fapp%5cadmin%5Cabc', '/app/admin/abc'],
    ['/%5Capp%2f%5c%2F%2e%2e%2fadmin%5c\\abc', '/app/admin/abc'],
    ['/app//../admin', '/app/admin'],
    ['/app//../../admin', '/admin'],
    ['/%c0%2e%c0%2e/admin', '/%c0.%c0./admin'],
    ['/%c0%2fadmin', '/%c0/admin'],
    // Not normalised: no double decoding, no overlong UTF-8, no case folding, `;` kept.
    ['/0x2e0x2e/admin', '/0x2e0x2e/admin'],
    ['/%25c0%25ae%25c1%259cadmin', '/%25c0%25ae%25c1%259cadmin'],
    ['/%252e%252e/admin', '/%252e%252e/admin'],
    ['/%252e%252e%252fadmin', '/%252e%252e%252fadmin'],
    ['/%c1%9cadmin', '/%c1%9cadmin'],
    ['/%c0%ae%c0%ae/admin', '/%c0%ae%c0%ae/admin'],
    ['/.../admin', '/.../admin'],
    ['/..../admin', '/..../admin'],
    ['/..;/admin', '/..;/admin'],
    ['/;/admin', '/;/admin'],
    ['/admin;a=b', '/admin;a=b'],
    ['/admin,a=b/xyz', '/admin,a=b/xyz'],
    ['/Admin', '/Admin'],
    ['/ADMIN', '/ADMIN'],
  ],
};

for (const [mode, cases] of Object.entries(ISTIO_CASES) as Array<[PathNormalization, Array<[string, string]>]>) {
  test(`normalizePath ${mode}: Istio's expectations`, () => {
    for (const [input, expected] of cases) {
      const r = normalizePath(input, mode);
      assert.ok(r.ok, `${input} refused: ${r.ok ? '' : r.reason}`);
      if (r.ok) assert.equal(r.path, expected, input);
    }
  });
}

test('DECODE_AND_MERGE_SLASHES: every single percent-encoded byte %01..%ff as Istio expects', () => {
  for (let i = 1; i <= 0xff; i++) {
    const input = `/admin%${i.toString(16).padStart(2, '0')}`;
    const ch = String.fromCharCode(i);
    const decoded = /[A-Za-z0-9\-._~]/.test(ch) ? `/admin${ch}` : ch === '/' || ch === '\\' ? '/admin/' : input;
    const r = normalizePath(input, 'DECODE_AND_MERGE_SLASHES');
    assert.ok(r.ok && r.path === decoded, `${input}: ${r.ok ? r.path : r.reason}`);
  }
});

test('the default is the strictest option, DECODE_AND_MERGE_SLASHES', () => {
  assert.equal(DEFAULT_PATH_NORMALIZATION, 'DECODE_AND_MERGE_SLASHES');
  const r = normalizePath('//admin%2Fx');
  assert.ok(r.ok && r.path === '/admin/x');
});

test('the tricks a rule on /admin must survive all become /admin', () => {
  for (const input of ['//admin', '/%61dmin', '/./admin', '/x/../admin', '/%2Fadmin', '/%5Cadmin', '/x/%2e%2e/admin', '/x/.%2E/admin', '/admin/.', '\\admin', '/x%2F..%2Fadmin', '/./././admin', '/a/b/../../admin']) {
    const r = normalizePath(input);
    assert.ok(r.ok, input);
    if (r.ok) assert.match(r.path, /^\/admin\/?$/, `${input} → ${r.path}`);
  }
});

test('query strings are kept apart and untouched; the fragment is dropped', () => {
  const r = normalizePath('/a/../b%2F?x=%2F..&y=1#frag');
  assert.ok(r.ok);
  if (!r.ok) return;
  assert.equal(r.path, '/b/');
  assert.equal(r.query, '?x=%2F..&y=1');
  assert.equal(r.target, '/b/?x=%2F..&y=1');
  const plain = normalizePath('/plain');
  assert.ok(plain.ok && plain.query === '' && plain.target === '/plain');
});

test('refused with 400 in every mode: %00, control characters, broken escapes, non-origin-form targets', () => {
  for (const mode of ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'] as const) {
    for (const bad of ['/admin%00', '/a\u0000b', '/a b', '/a\tb', '/a\u007fb', '/a%zz', '/a%4', '/a%', 'admin', '', 'http://x/admin', '/ok?q=%00', '/ok?q=a b']) {
      const r = normalizePath(bad, mode);
      assert.equal(r.ok, false, `${mode} ${JSON.stringify(bad)}`);
    }
  }
  const r = normalizePath('/admin%00');
  assert.ok(!r.ok && /%00/.test(r.reason));
  assert.equal(normalizePath('\\admin', 'NONE').ok, false);
});

test('OPTIONS * passes; non-ASCII is percent-encoded as UTF-8', () => {
  const star = normalizePath('*');
  assert.ok(star.ok && star.path === '*');
  const r = normalizePath('/café/../x/é');
  assert.ok(r.ok && r.path === '/x/%C3%A9', r.ok ? r.path : r.reason);
  assert.equal(normalizePath('/\ud800').ok, false);
});

test('dot segments never climb above the root', () => {
  for (const [input, expected] of [['/..', '/'], ['/../..', '/'], ['/a/..', '/'], ['/a/.', '/a/'], ['/../../etc/passwd', '/etc/passwd']]) {
    const r = normalizePath(input!, 'BASE');
    assert.ok(r.ok && r.path === expected, `${input}: ${r.ok ? r.path : r.reason}`);
  }
});
