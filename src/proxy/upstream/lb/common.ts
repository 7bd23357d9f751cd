// Shared pieces for balancers: which endpoints may take traffic, and preallocated pick results.

import type { LbEndpoint, Pick } from './balancer.ts';

/** Every balancer answers an empty (or all-zero-weight) set with the same frozen result. */
export const NO_HEALTHY_UPSTREAM: Pick = Object.freeze({ kind: 'fail', code: 'NO_HEALTHY_UPSTREAM' });

/**
 * The endpoints that may receive traffic: weight 0 means "send nothing here" (e.g. a drained
 * endpoint), and a weight that is not a positive finite number is treated the same rather than
 * poisoning the arithmetic of every other endpoint.
 */
export function eligible(endpoints: readonly LbEndpoint[]): LbEndpoint[] {
  return endpoints.filter((e) => e.weight > 0 && Number.isFinite(e.weight));
}

/**
 * One frozen `picked` result per endpoint, built with the balancer, so the request path does not
 * allocate. Safe because `active` lives on the endpoint object, which the result only points at.
 */
export function pickResults(endpoints: readonly LbEndpoint[]): Pick[] {
  return endpoints.map((endpoint) => Object.freeze({ kind: 'picked', endpoint }) as Pick);
}

/** True when every endpoint has the same weight, so balancers may take their unweighted fast path. */
export function equalWeights(endpoints: readonly LbEndpoint[]): boolean {
  return endpoints.every((e) => e.weight === endpoints[0]!.weight);
}

/** Endpoints in key order, for balancers whose result must not depend on the order EDS sent them. */
export function byKey(endpoints: readonly LbEndpoint[]): LbEndpoint[] {
  return [...endpoints].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The largest weight (a loop, not Math.max(...), which overflows the stack on huge lists). */
export function maxWeight(endpoints: readonly LbEndpoint[]): number {
  let max = 0;
  for (const e of endpoints) if (e.weight > max) max = e.weight;
  return max;
}

/**
 * Reads an optional numeric setting from config that arrived over the wire: `undefined` when
 * absent, the number when it is one, and an Error naming the policy and field otherwise.
 */
export function numberSetting(settings: unknown, field: string, policy: string): number | undefined {
  if (settings === undefined || settings === null) return undefined;
  if (typeof settings !== 'object') throw new Error(`${policy}: settings must be an object`);
  const value = (settings as Record<string, unknown>)[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw new Error(`${policy}: ${field} must be a number, got ${JSON.stringify(value)}`);
  return value;
}
