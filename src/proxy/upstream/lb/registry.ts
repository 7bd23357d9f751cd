// Balancer registry: load-balancing policies by name, each with a typed config parser; LbConfig in, Balancer out.

import type { LbConfig } from '../../../wire/snapshot.ts';
import type { Balancer, BalancerDeps, BalancerFactory, LbEndpoint } from './balancer.ts';
import { leastRequest, parseLeastRequestConfig } from './least-request.ts';
import { maglev, parseMaglevConfig } from './maglev.ts';
import { weightedRandom } from './random.ts';
import { parseRingHashConfig, ringHash } from './ring-hash.ts';
import { roundRobin } from './round-robin.ts';

/** A policy as it registers: how to check its settings, and how to build a balancer from them. */
export interface BalancerType<C> {
  /**
   * Checks and normalises the policy's settings as they came over the wire. Runs when config is
   * compiled, not per request; throws an Error whose message explains the problem (the proxy
   * NACKs the snapshot with it).
   */
  parseConfig(settings: unknown): C;
  create: BalancerFactory<C>;
}

/** A policy whose settings have been checked: builds a balancer for each endpoint list. */
export interface LbPolicy {
  /** The registered name: ROUND_ROBIN, LEAST_REQUEST, RANDOM, PASSTHROUGH, RING_HASH, MAGLEV. */
  readonly name: string;
  build(endpoints: readonly LbEndpoint[], deps: BalancerDeps): Balancer;
}

type Compiler = (settings: unknown) => (endpoints: readonly LbEndpoint[], deps: BalancerDeps) => Balancer;

// Each entry closes over its own config type, so the map needs no casts.
const policies = new Map<string, Compiler>();

/** Adds a policy under `name` (Envoy's spelling, e.g. RING_HASH). Names are unique. */
export function registerBalancer<C>(name: string, type: BalancerType<C>): void {
  if (policies.has(name)) throw new Error(`load balancer ${name} is already registered`);
  policies.set(name, (settings) => {
    const config = type.parseConfig(settings);
    return (endpoints, deps) => type.create(endpoints, config, deps);
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

/** Checks an LbConfig once, at compile time; the result builds balancers for endpoint lists. */
export function compileLbPolicy(config: LbConfig): LbPolicy {
  const { name, settings } = policyOf(config);
  const compile = policies.get(name);
  if (!compile) throw new Error(`unknown load balancer ${name} (registered: ${registeredBalancers().join(', ')})`);
  return Object.freeze({ name, build: compile(settings) });
}

/** A balancer for `endpoints` under `config`; throws on invalid config, never at pick time. */
export function createBalancer(config: LbConfig, endpoints: readonly LbEndpoint[], deps: BalancerDeps): Balancer {
  return compileLbPolicy(config).build(endpoints, deps);
}

const noSettings = (): null => null;

registerBalancer('ROUND_ROBIN', { parseConfig: noSettings, create: roundRobin });
registerBalancer('LEAST_REQUEST', { parseConfig: parseLeastRequestConfig, create: leastRequest });
registerBalancer('RANDOM', { parseConfig: noSettings, create: weightedRandom });
// PASSTHROUGH means "connect to the address the caller dialled" (Envoy's ORIGINAL_DST). Until
// original-destination routing lands, it balances as RANDOM over the cluster's endpoints.
registerBalancer('PASSTHROUGH', { parseConfig: noSettings, create: weightedRandom });
registerBalancer('RING_HASH', { parseConfig: parseRingHashConfig, create: ringHash });
registerBalancer('MAGLEV', { parseConfig: parseMaglevConfig, create: maglev });
