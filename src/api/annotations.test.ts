// Weft's streaming timeout annotations on a VirtualService: validated where they are written, read per route.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorKeys, load, warnings } from './testutil.ts';
import { streamingTimeouts } from './annotations.ts';

const vs = (annotations: string) =>
  `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: chat\n  annotations: ${annotations}\nspec:\n  hosts: [chat]\n  http:\n  - name: stream\n    route: [{destination: {host: chat}}]\n`;

test('valid durations load clean; a route-named key must name a route of the VirtualService', () => {
  const ok = load(vs('{weft.dev/first-byte-timeout: 5s, weft.dev/idle-timeout: 500ms, weft.dev/idle-timeout.stream: 1m}'));
  assert.deepEqual(errorKeys(ok), []);
  assert.deepEqual(warnings(ok), []);
  assert.deepEqual(errorKeys(load(vs('{weft.dev/idle-timeout: soon}'))), ['INVALID_VALUE metadata.annotations["weft.dev/idle-timeout"]']);
  assert.deepEqual(errorKeys(load(vs('{weft.dev/first-byte-timeout: 0s}'))), ['INVALID_VALUE metadata.annotations["weft.dev/first-byte-timeout"]']);
  assert.deepEqual(errorKeys(load(vs('{weft.dev/idle-timeout.nope: 1s}'))), ['UNKNOWN_FIELD metadata.annotations["weft.dev/idle-timeout.nope"]']);
  assert.deepEqual(warnings(load(vs('{weft.dev/idle-timout: 1s, other.io/x: y}'))).map((d) => `${d.code} ${d.path}`), ['UNKNOWN_FIELD metadata.annotations["weft.dev/idle-timout"]']);
});

test('streamingTimeouts: the route-named value wins over the VirtualService-wide one', () => {
  const a = { 'weft.dev/first-byte-timeout': '5s', 'weft.dev/idle-timeout': '2s', 'weft.dev/idle-timeout.chat': '10s' };
  assert.deepEqual(streamingTimeouts(a, 'chat'), { firstByteTimeoutMs: 5000, idleTimeoutMs: 10_000 });
  assert.deepEqual(streamingTimeouts(a, 'other'), { firstByteTimeoutMs: 5000, idleTimeoutMs: 2000 });
  assert.deepEqual(streamingTimeouts(a, undefined), { firstByteTimeoutMs: 5000, idleTimeoutMs: 2000 });
  assert.deepEqual(streamingTimeouts({}, 'chat'), {});
});
