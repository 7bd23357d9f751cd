// The schema language: types, unknown fields, required and one-of fields, snake_case names, durations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineCounter, parseDocument } from 'yaml';
import type { Diagnostic } from './types.ts';
import { bool, checkRoot, duration, enumOf, int, listOf, mapOf, num, obj, str, suggest, type Schema } from './schema.ts';
import { parseDuration, parseDurationNanos } from '../core/duration.ts';
import { formatDiagnostic } from './diagnostics.ts';

function check(schema: Schema, text: string, protoNames = false): { value: unknown; diagnostics: Diagnostic[]; lines: string[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const diagnostics: Diagnostic[] = [];
  const value = checkRoot(schema, doc.contents!, 'spec', { file: 's.yaml', lineCounter, doc, protoNames, diagnostics });
  return { value, diagnostics, lines: diagnostics.map(formatDiagnostic) };
}

const route = obj(
  {
    name: str(),
    weight: int({ min: 0 }),
    retryOn: str(),
    enabled: bool(),
    ratio: num({ min: 0, max: 1 }),
    mode: enumOf(['A', 'B']),
    timeout: duration(),
    tags: listOf(str()),
    labels: mapOf(str()),
    simple: str(),
    consistentHash: obj({ header: str() }),
  },
  { required: ['name'], oneOf: [['simple', 'consistentHash']] },
);

test('valid values pass through unchanged', () => {
  const r = check(route, 'name: r\nweight: 3\nenabled: true\nratio: 0.5\nmode: B\ntimeout: 1.5s\ntags: [a, b]\nlabels: {x: y}\n');
  assert.deepEqual(r.lines, []);
  assert.deepEqual(r.value, { name: 'r', weight: 3, enabled: true, ratio: 0.5, mode: 'B', timeout: '1.5s', tags: ['a', 'b'], labels: { x: 'y' } });
});

test('unknown fields are errors at the key, with a suggestion for a likely typo', () => {
  const r = check(route, 'name: r\nwieght: 3\nfrobnicate: 1\n');
  assert.deepEqual(r.lines, [
    's.yaml:2:1: error UNKNOWN_FIELD: spec.wieght: unknown field "wieght"; did you mean "weight"?',
    's.yaml:3:1: error UNKNOWN_FIELD: spec.frobnicate: unknown field "frobnicate"',
  ]);
  assert.deepEqual(r.value, { name: 'r' });
  assert.equal(suggest('Weight', ['weight', 'name']), 'weight');
  assert.equal(suggest('zzzzzz', ['weight', 'name']), undefined);
});

test('wrong types name the expected type and what was found', () => {
  const r = check(route, 'name: 5\nweight: "3"\nenabled: yes\ntags: a\nlabels: [a]\nratio: x\n');
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.path} ${d.line}:${d.col}`), [
    'INVALID_TYPE spec.name 1:7',
    'INVALID_TYPE spec.weight 2:9',
    'INVALID_TYPE spec.enabled 3:10',
    'INVALID_TYPE spec.tags 4:7',
    'INVALID_TYPE spec.labels 5:1',
    'INVALID_TYPE spec.ratio 6:8',
  ]);
  assert.match(r.diagnostics[0]!.message, /expected a string, got the number 5 \(quote it to make it a string\)/);
  assert.match(r.diagnostics[1]!.message, /expected an integer, got the string "3"/);
});

test('integers must be whole numbers within their range; numbers within theirs', () => {
  const r = check(route, 'name: r\nweight: 1.5\nratio: 2\n');
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.path}`), ['INVALID_TYPE spec.weight', 'INVALID_VALUE spec.ratio']);
  const big = check(route, 'name: r\nweight: 2147483648\n');
  assert.deepEqual(big.diagnostics.map((d) => d.message), ['spec.weight: must be between 0 and 2147483647']);
});

test('enums list their values', () => {
  const r = check(route, 'name: r\nmode: C\n');
  assert.deepEqual(r.lines, ['s.yaml:2:7: error INVALID_VALUE: spec.mode: unsupported value "C": must be one of A, B']);
});

test('required fields are reported at the parent', () => {
  const r = check(obj({ inner: route }), 'inner:\n  weight: 1\n');
  assert.deepEqual(r.lines, ['s.yaml:1:1: error REQUIRED: spec.inner.name: required field "name" is missing']);
});

test('one-of groups allow at most one member', () => {
  const r = check(route, 'name: r\nsimple: x\nconsistentHash: {header: h}\n');
  assert.deepEqual(r.diagnostics.map((d) => `${d.code} ${d.path} ${d.line}`), ['CONFLICT spec.consistentHash 3']);
  assert.match(r.diagnostics[0]!.message, /only one of "simple", "consistentHash" may be set/);
});

test('null means unset, as in protobuf JSON', () => {
  const r = check(route, 'name: r\nweight:\nmode: ~\n');
  assert.deepEqual(r.lines, []);
  assert.deepEqual(r.value, { name: 'r' });
});

test('snake_case field names are accepted for protobuf kinds and normalised to camelCase', () => {
  const accepted = check(route, 'name: r\nretry_on: 5xx\n', true);
  assert.deepEqual(accepted.lines, []);
  assert.deepEqual(accepted.value, { name: 'r', retryOn: '5xx' });
  const notProto = check(route, 'name: r\nretry_on: 5xx\n', false);
  assert.deepEqual(notProto.diagnostics.map((d) => d.code), ['UNKNOWN_FIELD']);
  const both = check(route, 'name: r\nretryOn: a\nretry_on: b\n', true);
  assert.deepEqual(both.diagnostics.map((d) => `${d.code} ${d.path} ${d.line}`), ['CONFLICT spec.retryOn 3']);
});

test('invalid list items leave a hole so later items keep their index', () => {
  const r = check(listOf(int()), '- 1\n- x\n- 3\n');
  assert.deepEqual(r.value, [1, undefined, 3]);
  assert.deepEqual(r.diagnostics.map((d) => d.path), ['spec[1]']);
  // An object keeps its valid fields; only the bad field is left out.
  const o = check(listOf(obj({ n: int(), m: int() })), '- {n: 1, m: 2}\n- {n: x, m: 2}\n');
  assert.deepEqual(o.value, [{ n: 1, m: 2 }, { m: 2 }]);
});

test('map keys with dots or slashes are quoted in paths', () => {
  const r = check(mapOf(int()), 'app.kubernetes.io/name: x\nplain: y\n');
  assert.deepEqual(r.diagnostics.map((d) => d.path), ['spec["app.kubernetes.io/name"]', 'spec.plain']);
});

test('durations: Go/protobuf syntax, at least 1ms, whole milliseconds', () => {
  for (const ok of ['10s', '1.5s', '300ms', '1h', '1h30m', '2m3.5s', '0.001s', '1000000us']) {
    assert.deepEqual(check(duration(), JSON.stringify(ok)).lines, [], ok);
  }
  const bad = (text: string) => check(duration(), JSON.stringify(text)).diagnostics.map((d) => d.message);
  assert.match(bad('10')[0]!, /invalid duration "10"/);
  assert.match(bad('1.5 s')[0]!, /invalid duration/);
  assert.match(bad('s')[0]!, /invalid duration/);
  assert.match(bad('0s')[0]!, /greater than 1ms/);
  assert.match(bad('-1s')[0]!, /greater than 1ms/);
  assert.match(bad('1500us')[0]!, /ms precision/);
  assert.deepEqual(check(duration({ istio: false }), '"0s"').lines, []);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('1h1m'), 3_660_000);
  assert.equal(parseDuration('250µs'), 0.25);
  assert.equal(parseDurationNanos('0'), 0n);
  assert.equal(parseDuration('forever'), undefined);
});
