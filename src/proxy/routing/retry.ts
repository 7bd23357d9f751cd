// Retry policy: which outcomes are retried, and how long to wait before the next try (pure).

import type { Random } from '../../core/random.ts';
import type { RetryPolicyConfig } from '../../wire/snapshot.ts';
import type { ErrorCode } from '../../core/errors.ts';

/** What a try ended with, as the retry policy needs to see it. */
export type TryResult =
  | { kind: 'response'; status: number; grpcStatus: string }
  | { kind: 'local'; code: ErrorCode };

const GRPC_CONDITIONS: Record<string, string> = {
  cancelled: '1',
  'deadline-exceeded': '4',
  'resource-exhausted': '8',
  internal: '13',
  unavailable: '14',
};

/** Compiled once per route: a predicate over try results. */
export interface CompiledRetryPolicy {
  readonly config: RetryPolicyConfig;
  retriable(r: TryResult): boolean;
}

export function compileRetryPolicy(config: RetryPolicyConfig): CompiledRetryPolicy {
  const on = new Set(config.retryOn);
  for (const c of on)
    if (!KNOWN_CONDITIONS.has(c)) throw new Error(`retry condition "${c}" is not one Weft knows (${[...KNOWN_CONDITIONS].join(', ')})`);
  const codes = new Set(on.has('retriable-status-codes') ? config.retriableStatusCodes : []);
  const grpc = new Set(Object.entries(GRPC_CONDITIONS).filter(([name]) => on.has(name)).map(([, code]) => code));
  const any5xx = on.has('5xx');
  const gateway = on.has('gateway-error');
  const reset = on.has('reset');
  const connect = on.has('connect-failure');
  const refused = on.has('refused-stream');
  return {
    config,
    retriable(r) {
      if (r.kind === 'local') {
        switch (r.code) {
          case 'UPSTREAM_CONNECT_FAILURE':
            return connect || reset || any5xx || gateway;
          case 'UPSTREAM_RESET':
            // Envoy's wouldRetryFromReset: a reset reads as a 503, so gateway-error retries it too.
            return reset || any5xx || gateway;
          case 'UPSTREAM_REFUSED_STREAM':
            // Envoy's wouldRetryFromReset: any reset under reset, 5xx or gateway-error; this one
            // under refused-stream too. The server never processed it, so the method does not matter.
            return refused || reset || any5xx || gateway;
          case 'UPSTREAM_TIMEOUT':
            // A per-try timeout reads as a 504 to Envoy's retry conditions.
            return any5xx || gateway || reset;
          case 'NO_HEALTHY_UPSTREAM':
            return false;
          default:
            return false;
        }
      }
      const s = r.status;
      if (any5xx && s >= 500) return true;
      if (gateway && (s === 502 || s === 503 || s === 504)) return true;
      if (on.has('retriable-4xx') && s === 409) return true;
      if (codes.has(s)) return true;
      if (r.grpcStatus !== '' && grpc.has(r.grpcStatus)) return true;
      return false;
    },
  };
}

const KNOWN_CONDITIONS = new Set([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'envoy-ratelimited',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'retriable-headers',
  'http3-post-connect-failure',
  ...Object.keys(GRPC_CONDITIONS),
]);

/**
 * Envoy's fully jittered exponential backoff: before retry n (1-based) wait a uniformly random
 * time in [0, min(cap, base × (2^n − 1))].
 */
export function backoffMs(policy: RetryPolicyConfig, retry: number, random: Random): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * (2 ** retry - 1));
  return random.next() * ceiling;
}
