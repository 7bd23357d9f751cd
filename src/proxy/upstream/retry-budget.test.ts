// Retry budget: Envoy's arithmetic, Istio's defaults, and the budget interval's window.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../core/clock.ts';
import { parseRetryBudgetConfig, RETRY_BUDGET_DEFAULTS } from '../../translate/resilience.ts';
import { RetryBudget, retryBudgetLimit } from './retry-budget.ts';

describe('parseRetryBudgetConfig', () => {
  it('defaults: 20 %, at least 3, no interval', () => {
    assert.deepEqual(parseRetryBudgetConfig({}), { percent: 20, minRetryConcurrency: 3, budgetIntervalMs: 0 });
    assert.deepEqual(parseRetryBudgetConfig(undefined), RETRY_BUDGET_DEFAULTS);
  });

  it('reads the fields; minRetryConcurrency 0 is Istio’s unset (3), percent 0 is kept', () => {
    assert.deepEqual(parseRetryBudgetConfig({ percent: 12.5, minRetryConcurrency: 10, budgetInterval: '10s' }), { percent: 12.5, minRetryConcurrency: 10, budgetIntervalMs: 10_000 });
    assert.equal(parseRetryBudgetConfig({ minRetryConcurrency: 0 }).minRetryConcurrency, 3);
    assert.equal(parseRetryBudgetConfig({ percent: 0 }).percent, 0);
    assert.equal(parseRetryBudgetConfig({ budgetInterval: '0s' }).budgetIntervalMs, 0);
  });

  it('rejects what Istio rejects', () => {
    assert.throws(() => parseRetryBudgetConfig({ percent: -1 }), /not in range/);
    assert.throws(() => parseRetryBudgetConfig({ percent: 100.5 }), /not in range/);
    assert.throws(() => parseRetryBudgetConfig({ budgetInterval: '-1s' }), /negative/);
    assert.throws(() => parseRetryBudgetConfig({ ratio: 0.2 }), /unknown field/);
  });
});

describe('retry budget math', () => {
  it('⌊percent × requests⌋, never below the minimum (Envoy’s example: 20 % of 25 = 5; of 2 → 3)', () => {
    const c = parseRetryBudgetConfig({});
    assert.equal(retryBudgetLimit(c, 25), 5);
    assert.equal(retryBudgetLimit(c, 2), 3);
    assert.equal(retryBudgetLimit(c, 0), 3);
    assert.equal(retryBudgetLimit(c, 29), 5, 'rounded down: 5.8 → 5');
    assert.equal(retryBudgetLimit(c, 1000), 200);
    assert.equal(retryBudgetLimit(parseRetryBudgetConfig({ percent: 0, minRetryConcurrency: 1 }), 1000), 1);
    assert.equal(retryBudgetLimit(parseRetryBudgetConfig({ percent: 100 }), 7), 7);
  });

  it('without an interval, the base is the requests active and pending now', () => {
    const b = new RetryBudget(parseRetryBudgetConfig({ percent: 50, minRetryConcurrency: 1 }), new ManualClock());
    for (let i = 0; i < 100; i++) b.onRequest();
    assert.equal(b.limit(10), 5);
  });

  it('with an interval, the base is the requests started in the last interval (ten slots)', () => {
    const clock = new ManualClock(0);
    const b = new RetryBudget(parseRetryBudgetConfig({ percent: 10, minRetryConcurrency: 1, budgetInterval: '10s' }), clock);
    for (let i = 0; i < 100; i++) b.onRequest(); // slot 0
    clock.advance(5_000);
    for (let i = 0; i < 50; i++) b.onRequest(); // slot 5
    assert.equal(b.limit(0), 15, '10 % of 150, whatever is in flight');
    clock.advance(5_000); // t = 10 s: slot 0 has left the window
    assert.equal(b.requestsInWindow(), 50);
    assert.equal(b.limit(999), 5);
    clock.advance(5_000);
    assert.equal(b.limit(999), 1, 'nothing in the window: the minimum');
    clock.advance(60_000);
    b.onRequest();
    assert.equal(b.requestsInWindow(), 1, 'old slots are overwritten, not summed');
  });
});
