import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runInNewContext } from 'node:vm';
import { collectStartupGarbage } from './startup-gc.ts';

test('the start-up collection runs on this Node and leaves gc exposed nowhere', () => {
  assert.equal(collectStartupGarbage(), true, 'Node 24 gives a fresh context gc() while --expose-gc is set');
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, 'undefined', 'the main context never gets gc');
  assert.equal(runInNewContext('typeof gc'), 'undefined', 'the flag is reset: later contexts get no gc');
});

test('it frees what start-up left: a large garbage array is gone from the old generation afterwards', async () => {
  const { getHeapStatistics } = await import('node:v8');
  // Tens of MB of garbage, as start-up's parsed snapshot JSON would be.
  let junk: unknown[] | undefined = Array.from({ length: 400_000 }, (_, i) => ({ i, s: `value ${i}` }));
  const before = getHeapStatistics().used_heap_size;
  junk = undefined;
  assert.equal(junk, undefined);
  assert.equal(collectStartupGarbage(), true);
  const after = getHeapStatistics().used_heap_size;
  assert.ok(after < before - 10_000_000, `heap used ${before} → ${after}: the garbage was collected`);
});
