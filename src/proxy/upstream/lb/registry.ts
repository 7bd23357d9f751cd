// Balancer registry: load-balancing policies by name, each with a typed config parser; LbConfig in, Balancer out.

import type { LbConfig } from '../../../wire/snapshot.ts';
import type { Balancer, BalancerDeps, BalancerFactory, LbEndpoint } from './balancer.ts';
import { leastRequest, parseLeastRequestConfig } from './least-request.ts';
import { maglev, parseMaglevConfig } from './maglev.ts';
import { weightedRandom } from './random.ts';
import { parseRingHashConfig, ringHash } from './ring-hash.ts';
import { roundRobin } from './round-robin.ts';
import { parseSlowStartConfig, withSlowStart } from './slow-start.ts';

/** A policy as it registers: how to check its settings, and how to build a balancer from them. */
export interface BalancerType<C> {
  /**
   * Checks and normalises the policy's settings as they came over the wire. Runs when config is
   * compiled, not per request; throws an Error whose message explains the problem (the proxy
   * NACKs the snapshot with it).
   */
  parseConfig(settings: unknown): C;
  create: BalancerFactory<C>;
  /**
   * True when Envoy applies slow start (Istio's `warmup`) to this policy: ROUND_ROBIN and
   * LEAST_REQUEST. An LbConfig with `warmup` for any other policy is rejected when compiled.
   */
  slowStart?: boolean;
}

/** A policy whose settings have been checked: builds a balancer for each endpoint list. */
export interface LbPolicy {
  /** The registered name: ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH, RING_HASH, MAGLEV. */
  readonly name: string;
  build(endpoints: readonly LbEndpoint[], deps: BalancerDeps): Balancer;
}

type Compiler = (settings: unknown) => (endpoints: readonly LbEndpoint[], deps: BalancerDeps) => Balancer;

// Each entry closes over its own config type, so the map needs no casts.
const policies = new Map<string, { compile: Compiler; slowStart: boolean }>();

/** Adds a policy under `name` (Envoy's spelling, e.g. RING_HASH). Names are unique. */
export function registerBalancer<C>(name: string, type: BalancerType<C>): void {
  if (policies.has(name)) throw new Error(`load balancer ${name} is already registered`);
  policies.set(name, {
    compile: (settings) => {
      const config = type.parseConfig(settings);
      return (endpoints, deps) => type.create(endpoints, config, deps);
    },
    slowStart: type.slowStart === true,
  });
}

/** Names of every registered policy, in registration order. */
export function registeredBalancers(): string[] {
  return [...policies.keys()];
}

/**
 * Which registered policy an LbConfig selects, and the settings that policy parses. Consistent
 * hashing is named by its algorithm (RING_HASH, MAGLEV), as in Envoy; the hash *key* is not the
 * balancer's business (the request path computes `hashKey` from it).
 */
export function policyOf(config: LbConfig): { name: string; settings: unknown } {
  if ('simple' in config) return { name: config.simple, settings: undefined };
  if ('consistentHash' in config) {
    const algorithm = config.consistentHash.algorithm;
    if ('ringHash' in algorithm) return { name: 'RING_HASH', settings: algorithm.ringHash };
    if ('maglev' in algorithm) return { name: 'MAGLEV', settings: algorithm.maglev };
  }
  throw new Error(`unknown load balancer config: ${JSON.stringify(config)}`);
}

/**
 * Checks an LbConfig once, at compile time; the result builds balancers for endpoint lists. With
 * `warmup`, the policy's balancers are wrapped in slow start (see slow-start.ts).
 */
export function compileLbPolicy(config: LbConfig): LbPolicy {
  const { name, settings } = policyOf(config);
  const policy = policies.get(name);
  if (!policy) throw new Error(`unknown load balancer ${name} (registered: ${registeredBalancers().join(', ')})`);
  const build = policy.compile(settings);
  if (!('warmup' in config) || config.warmup === undefined) return Object.freeze({ name, build });
  if (!policy.slowStart) {
    const ramped = [...policies].filter(([, p]) => p.slowStart).map(([n]) => n);
    throw new Error(`warmup: ${name} has no slow start (only ${ramped.join(' and ')} ramp new endpoints, as in Envoy)`);
  }
  return Object.freeze({ name, build: withSlowStart(build, parseSlowStartConfig(config.warmup)) });
}

/** A balancer for `endpoints` under `config`; throws on invalid config, never at pick time. */
export function createBalancer(config: LbConfig, endpoints: readonly LbEndpoint[], deps: BalancerDeps): Balancer {
  return compileLbPolicy(config).build(endpoints, deps);
}

const noSettings = (): null => null;

registerBalancer('ROUND_ROBIN', { parseConfig: noSettings, create: roundRobin, slowStart: true });
registerBalancer('LEAST_REQUEST', { parseConfig: parseLeastRequestConfig, create: leastRequest, slowStart: true });
registerBalancer('RANDOM', { parseConfig: noSettings, create: weightedRandom });
// PASSTHROUGH means "connect to the address the caller dialled" (Envoy's ORIGINAL_DST). Until
// original-destination routing lands, it balances as RANDOM over the cluster's endpoints.
registerBalancer('PASSTHROUGH', { parseConfig: noSettings, create: weightedRandom });
registerBalancer('RING_HASH', { parseConfig: parseRingHashConfig, create: ringHash });
registerBalancer('MAGLEV', { parseConfig: parseMaglevConfig, create: maglev });
