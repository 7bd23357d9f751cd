// Balancer: the small interface every load-balancing policy implements, and the pick result.

import type { Clock } from '../../../core/clock.ts';
import type { Random } from '../../../core/random.ts';

/**
 * An endpoint as balancers see it. `active` is the number of requests in flight to it from this
 * proxy; the pipeline keeps it current (it survives snapshot swaps, because the same endpoint
 * object is reused while its address stays in the cluster).
 */
export interface LbEndpoint {
  /** `host:port`, unique within a cluster. */
  readonly key: string;
  readonly weight: number;
  active: number;
  /**
   * When the endpoint joined the cluster, in milliseconds on the balancers' clock (`deps.clock`).
   * Slow start ramps its weight for the warmup window after this. The pipeline keeps it across
   * snapshot swaps (see EndpointStates.joinTimes); absent means "joined long ago", never warming.
   */
  readonly joinedAt?: number;
}

/** What a request offers the balancer: a hash key for consistent hashing, when the policy asks. */
export interface PickContext {
  hashKey?: string;
}

/** A discriminated union, so callers must handle every case. */
export type Pick =
  | { kind: 'picked'; endpoint: LbEndpoint }
  | { kind: 'fail'; code: 'NO_HEALTHY_UPSTREAM' };

export interface Balancer {
  pick(ctx: PickContext): Pick;
}

export interface BalancerDeps {
  random: Random;
  clock: Clock;
}

/** Builds a balancer over a fixed endpoint list; a new list means a new balancer. */
export type BalancerFactory<C = unknown> = (endpoints: readonly LbEndpoint[], config: C, deps: BalancerDeps) => Balancer;
