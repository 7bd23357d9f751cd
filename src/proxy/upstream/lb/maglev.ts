// MAGLEV: consistent hashing through Maglev's lookup table (Eisenbud et al., NSDI 2016), weighted.

import type { Balancer, BalancerFactory, Pick } from './balancer.ts';
import { byKey, eligible, maxWeight, NO_HEALTHY_UPSTREAM, numberSetting, pickResults } from './common.ts';
import { EdfSchedule } from './edf.ts';
import { hash53 } from './hash.ts';

/** Envoy's ceiling on the table size (a prime); build time and memory grow with it. */
export const MAX_MAGLEV_TABLE_SIZE = 5_000_011;

export interface MaglevConfig {
  /** Slots in the lookup table; must be prime so every endpoint's permutation visits every slot. */
  tableSize: number;
}

/** Validates Maglev settings; throws with a message fit for a NACK. */
export function parseMaglevConfig(settings: unknown): MaglevConfig {
  const size = numberSetting(settings, 'tableSize', 'maglev') ?? 65537;
  if (!Number.isInteger(size) || size < 2 || size > MAX_MAGLEV_TABLE_SIZE) {
    throw new Error(`maglev: tableSize must be a prime from 2 to ${MAX_MAGLEV_TABLE_SIZE}, got ${size}`);
  }
  if (!isPrime(size)) throw new Error(`maglev: tableSize must be prime, got ${size}`);
  return Object.freeze({ tableSize: size });
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

// Seeds for the two hashes of an endpoint key that define its permutation of the table.
const OFFSET_SEED = 0x4d41474c;
const SKIP_SEED = 0x45565331;

/**
 * Each endpoint walks the table in its own order (start at `offset`, step by `skip`, both hashed
 * from its key) and, taking turns, claims the next slot in its order that is still free, until
 * the table is full. Turns are weighted (an endpoint of half the heaviest weight gets every other
 * turn), so slots, and with them keys, split in proportion to weight.
 * Lookup is one hash of the request key and one array read.
 *
 * Compared with a ring, the table balances almost exactly (slot counts differ by at most one
 * between equal endpoints) at a fixed memory cost; in exchange a change of endpoints moves
 * slightly more than the minimal 1/N of keys, because freed slots cascade through the turns.
 * Endpoints are placed in key order, so the table does not depend on the order EDS sent them.
 * With more endpoints than slots, some endpoints get no slot and so no hashed traffic.
 *
 * A request without a hash key gets a random slot: a weighted random pick, as in Envoy.
 */
export const maglev: BalancerFactory<MaglevConfig> = (endpoints, config, { random }): Balancer => {
  const live = byKey(eligible(endpoints));
  const n = live.length;
  if (n === 0) return { pick: () => NO_HEALTHY_UPSTREAM };
  const results = pickResults(live);

  const size = config.tableSize;
  // Slot -> endpoint index; `n` marks a free slot while building.
  const table = n < 0xffff ? new Uint16Array(size) : new Uint32Array(size);
  table.fill(n);
  const heaviest = maxWeight(live);
  const next = new Float64Array(n);
  const skip = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    next[i] = hash53(live[i]!.key, OFFSET_SEED) % size;
    skip[i] = (hash53(live[i]!.key, SKIP_SEED) % (size - 1)) + 1;
  }
  // Turns come from an earliest-deadline-first schedule: everyone once in key order, then each
  // endpoint again every `heaviest / weight` turns. That is O(log n) per slot however skewed
  // the weights, where "one pass over every endpoint per round" would be O(n) per slot.
  const period = live.map((e) => heaviest / e.weight);
  const turns = new EdfSchedule(period.map(() => 0));
  for (let free = size; free > 0; free--) {
    const i = turns.peek();
    turns.advance(period[i]!);
    let slot = next[i]!;
    while (table[slot] !== n) {
      slot += skip[i]!;
      if (slot >= size) slot -= size;
    }
    table[slot] = i;
    slot += skip[i]!;
    next[i] = slot >= size ? slot - size : slot;
  }

  return {
    pick(ctx): Pick {
      const slot = ctx.hashKey === undefined ? random.int(size) : hash53(ctx.hashKey) % size;
      return results[table[slot]!]!;
    },
  };
};
