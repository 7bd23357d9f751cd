import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../../core/random.ts';
import { backoffMs, compileRetryPolicy } from './retry.ts';
// The default policy is translation's (the proxy only runs what a snapshot carries).
import { meshDefaultRetryPolicy } from '../../translate/route-action.ts';

const policy = (retryOn: string[], codes: number[] = []) =>
  compileRetryPolicy({ ...meshDefaultRetryPolicy(false), retryOn, retriableStatusCodes: codes });

test('the mesh default retries connect failures and gRPC unavailable/cancelled, not 503', () => {
  const p = compileRetryPolicy(meshDefaultRetryPolicy(false));
  assert.equal(p.config.attempts, 2);
  assert.equal(p.retriable({ kind: 'local', code: 'UPSTREAM_CONNECT_FAILURE' }), true);
  assert.equal(p.retriable({ kind: 'response', status: 503, grpcStatus: '' }), false);
  assert.equal(p.retriable({ kind: 'response', status: 200, grpcStatus: '14' }), true);
  assert.equal(p.retriable({ kind: 'response', status: 200, grpcStatus: '1' }), true);
  assert.equal(p.retriable({ kind: 'response', status: 200, grpcStatus: '13' }), false);
  assert.equal(p.retriable({ kind: 'local', code: 'UPSTREAM_RESET' }), false);
  assert.equal(p.retriable({ kind: 'local', code: 'UPSTREAM_TIMEOUT' }), false);
  // refused-stream is in the default: a stream the upstream refused unprocessed goes again.
  assert.equal(p.retriable({ kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }), true);
});

const table: Array<[string[], number[], Parameters<ReturnType<typeof policy>['retriable']>[0], boolean]> = [
  [['5xx'], [], { kind: 'response', status: 500, grpcStatus: '' }, true],
  [['5xx'], [], { kind: 'response', status: 404, grpcStatus: '' }, false],
  [['5xx'], [], { kind: 'local', code: 'UPSTREAM_RESET' }, true],
  [['5xx'], [], { kind: 'local', code: 'UPSTREAM_TIMEOUT' }, true],
  [['gateway-error'], [], { kind: 'response', status: 502, grpcStatus: '' }, true],
  [['gateway-error'], [], { kind: 'response', status: 500, grpcStatus: '' }, false],
  [['gateway-error'], [], { kind: 'local', code: 'UPSTREAM_TIMEOUT' }, true],
  // A reset reads as a 503 to Envoy's retry conditions (wouldRetryFromReset).
  [['gateway-error'], [], { kind: 'local', code: 'UPSTREAM_RESET' }, true],
  [['reset'], [], { kind: 'local', code: 'UPSTREAM_RESET' }, true],
  [['reset'], [], { kind: 'response', status: 503, grpcStatus: '' }, false],
  // Envoy's wouldRetryFromReset: refused-stream retries only a refused stream; reset, 5xx and
  // gateway-error retry it as any reset.
  [['refused-stream'], [], { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }, true],
  [['refused-stream'], [], { kind: 'local', code: 'UPSTREAM_RESET' }, false],
  [['refused-stream'], [], { kind: 'local', code: 'UPSTREAM_CONNECT_FAILURE' }, false],
  [['refused-stream'], [], { kind: 'response', status: 503, grpcStatus: '' }, false],
  [['reset'], [], { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }, true],
  [['5xx'], [], { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }, true],
  [['gateway-error'], [], { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }, true],
  [['connect-failure', 'unavailable', 'cancelled', 'retriable-4xx'], [], { kind: 'local', code: 'UPSTREAM_REFUSED_STREAM' }, false],
  [['retriable-4xx'], [], { kind: 'response', status: 409, grpcStatus: '' }, true],
  [['retriable-status-codes'], [429], { kind: 'response', status: 429, grpcStatus: '' }, true],
  [['connect-failure'], [429], { kind: 'response', status: 429, grpcStatus: '' }, false],
  [['resource-exhausted'], [], { kind: 'response', status: 200, grpcStatus: '8' }, true],
  [['deadline-exceeded'], [], { kind: 'response', status: 200, grpcStatus: '4' }, true],
];

for (const [on, codes, result, want] of table) {
  test(`retryOn ${on.join(',')}${codes.length ? ` codes ${codes}` : ''}: ${JSON.stringify(result)} → ${want}`, () => {
    assert.equal(policy(on, codes).retriable(result), want);
  });
}

test('an unknown retry condition is refused when the snapshot is compiled', () => {
  assert.throws(() => policy(['sometimes']), /retry condition "sometimes"/);
});

test('backoff is fully jittered under base × (2^n − 1), capped', () => {
  const p = meshDefaultRetryPolicy(false);
  const r = seededRandom(7);
  for (let n = 1; n <= 6; n++) {
    const ceiling = Math.min(250, 25 * (2 ** n - 1));
    let max = 0;
    for (let i = 0; i < 2000; i++) {
      const b = backoffMs(p, n, r);
      assert.ok(b >= 0 && b <= ceiling, `retry ${n}: ${b}`);
      max = Math.max(max, b);
    }
    assert.ok(max > ceiling * 0.9, `retry ${n} spans its range (max ${max} of ${ceiling})`);
  }
});
