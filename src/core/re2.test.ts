// RE2 patterns: what RE2 rejects is rejected, what it accepts runs in JavaScript with RE2's meaning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRe2, compileRe2, translateRe2 } from './re2.ts';

test('rejects what RE2 rejects, with the reason', () => {
  const cases: Array<[string, RegExp]> = [
    ['(?=a)b', /lookahead/],
    ['(?!a)b', /lookahead/],
    ['(?<=a)b', /lookbehind/],
    ['(?<!a)b', /lookbehind/],
    ['(a)\\1', /backreference/],
    ['(?P<x>a)(?P=x)', /backreferences and recursion/],
    ['\\k<x>', /backreference/],
    ['a*+', /nested repetition/],
    ['a++', /nested repetition/],
    ['a?+', /nested repetition/],
    ['a{2}+', /nested repetition/],
    ['a**', /nested repetition/],
    ['(?>a)', /atomic/],
    ['*a', /missing argument/],
    ['a|+', /missing argument/],
    ['a{2,1}', /invalid repeat count/],
    ['a{1001}', /invalid repeat count/],
    ['(a', /missing closing \)/],
    ['a)', /unexpected \)/],
    ['[a', /missing closing ]/],
    ['[z-a]', /invalid character class range/],
    ['[[:foo:]]', /invalid character class range/],
    ['\\Z', /invalid escape/],
    ['\\e', /invalid escape/],
    ['\\', /trailing backslash/],
    ['(?#comment)', /unsupported Perl syntax/],
    ['(?P<a>x)(?P<a>y)', /duplicate capture group name/],
    ['\\p{NotAScript}', /unknown Unicode class/],
  ];
  for (const [pattern, reason] of cases) {
    const problem = checkRe2(pattern);
    assert.ok(problem, `${pattern} should be rejected`);
    assert.match(problem!, reason, pattern);
  }
  assert.match(checkRe2('a'.repeat(1025))!, /too large/);
});

/** [pattern, strings it matches in full, strings it does not]. */
const semantics: Array<[string, string[], string[]]> = [
  ['/v[0-9]+/models', ['/v2/models'], ['/x/v2/models', '/v2/models/x']],
  ['b.*', ['b', 'bar'], ['ab', 'b\n']],
  ['^(.*?;)?(user=dev-123)(;.*)?', ['user=dev-123', 'a=1;user=dev-123;b=2'], ['user=dev-1234']],
  ['.*Firefox.*', ['Mozilla Firefox/1'], ['Chrome']],
  ['(?i)abc', ['ABC', 'aBc'], ['abd']],
  ['a(?i)b|c', ['aB', 'C', 'c'], ['AB']],
  ['(?i:a)b', ['Ab'], ['AB']],
  ['(?s)a.b', ['a\nb'], []],
  ['a.b', ['a\rb'], ['a\nb']], // RE2's . excludes only \n
  ['\\x{41}\\x42', ['AB'], []],
  ['\\Q.*\\E+', ['.*', '.**'], ['ab']],
  ['[[:alpha:]]+[[:digit:]]', ['ab1'], ['ab']],
  ['[[:^digit:]]', ['a'], ['1']],
  ['(?P<name>x)y', ['xy'], []],
  ['\\pL\\p{Greek}', ['aα'], ['a1']],
  ['a{', ['a{'], []],
  ['x{2}', ['xx'], ['x']],
  ['\\Aab\\z', ['ab'], []],
  ['\\s', [' ', '\t'], ['\u00a0']], // RE2's \s is ASCII whitespace only
  ['[^]a]', ['b'], [']', 'a']],
  ['(?U)a+', ['aaa'], []],
  ['\\012', ['\n'], []],
];

test('translated patterns match what RE2 matches, as a whole string', () => {
  for (const [pattern, yes, no] of semantics) {
    const t = translateRe2(pattern);
    assert.ok(t.ok, `${pattern}: ${!t.ok ? t.reason : ''}`);
    const re = compileRe2(pattern);
    for (const s of yes) assert.ok(re.test(s), `${pattern} should match ${JSON.stringify(s)} (js: ${re.source})`);
    for (const s of no) assert.ok(!re.test(s), `${pattern} should not match ${JSON.stringify(s)} (js: ${re.source})`);
  }
});

test('(?m) keeps the full-string anchoring: ^ and $ inside mean line boundaries only', () => {
  const re = compileRe2('(?m)a$\\n^b');
  assert.ok(re.test('a\nb'));
  assert.ok(!re.test('xa\nb'));
});

test('compileRe2 throws with the reason for an invalid pattern', () => {
  assert.throws(() => compileRe2('(?=x)'), /invalid RE2 regex "\(\?=x\)": lookahead/);
});
