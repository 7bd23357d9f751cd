import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from './duration.ts';

test('parses Istio durations to milliseconds', () => {
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('300ms'), 300);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1m30s'), 90_000);
});

test('rejects what is not a duration', () => {
  for (const bad of ['', '10', 's', '10x', '1s junk']) assert.equal(parseDuration(bad), undefined, bad);
});
