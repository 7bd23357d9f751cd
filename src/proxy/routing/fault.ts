// Fault injection: whether this request is delayed or aborted, decided with injected randomness (pure).

import type { Random } from '../../core/random.ts';
import type { FaultConfig } from '../../wire/snapshot.ts';

export interface FaultDecision {
  delayMs?: number;
  abort?: { httpStatus: number } | { grpcStatus: string };
}

/** Each fault applies to its own percentage of requests (Istio: absent = 0 %), drawn independently. */
export function decideFault(fault: FaultConfig | undefined, random: Random): FaultDecision | undefined {
  if (!fault) return undefined;
  let out: FaultDecision | undefined;
  if (fault.delay && random.next() * 100 < fault.delay.percent) out = { delayMs: fault.delay.fixedDelayMs };
  if (fault.abort && random.next() * 100 < fault.abort.percent) {
    const a = fault.abort;
    out = { ...out, abort: 'httpStatus' in a ? { httpStatus: a.httpStatus } : { grpcStatus: a.grpcStatus } };
  }
  return out;
}

/** gRPC status names Istio accepts in `fault.abort.grpcStatus`, to their numeric codes. */
export const GRPC_STATUS_CODES: Record<string, string> = {
  OK: '0',
  CANCELLED: '1',
  UNKNOWN: '2',
  INVALID_ARGUMENT: '3',
  DEADLINE_EXCEEDED: '4',
  NOT_FOUND: '5',
  ALREADY_EXISTS: '6',
  PERMISSION_DENIED: '7',
  RESOURCE_EXHAUSTED: '8',
  FAILED_PRECONDITION: '9',
  ABORTED: '10',
  OUT_OF_RANGE: '11',
  UNIMPLEMENTED: '12',
  INTERNAL: '13',
  UNAVAILABLE: '14',
  DATA_LOSS: '15',
  UNAUTHENTICATED: '16',
};
