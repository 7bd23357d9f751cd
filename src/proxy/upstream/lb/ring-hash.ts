// RING_HASH: consistent hashing on a ketama-style ring; each endpoint owns points in proportion to its weight.

import type { Balancer, BalancerFactory, Pick } from './balancer.ts';
import { byKey, eligible, maxWeight, NO_HEALTHY_UPSTREAM, numberSetting, pickResults } from './common.ts';
import { hash53 } from './hash.ts';

/** Envoy's ceiling on ring size; larger rings cost memory and build time for no useful gain. */
export const MAX_RING_SIZE = 8 * 1024 * 1024;

export interface RingHashConfig {
  /** Points on the ring for the heaviest endpoint (and so the least the ring holds). */
  minimumRingSize: number;
}

/** Validates ring-hash settings; throws with a message fit for a NACK. */
export function parseRingHashConfig(settings: unknown): RingHashConfig {
  const size = numberSetting(settings, 'minimumRingSize', 'ringHash') ?? 1024;
  if (!Number.isInteger(size) || size < 1 || size > MAX_RING_SIZE) {
    throw new Error(`ringHash: minimumRingSize must be an integer from 1 to ${MAX_RING_SIZE}, got ${size}`);
  }
  return Object.freeze({ minimumRingSize: size });
}

const TWO_POW_53 = 2 ** 53;

/**
 * A request's hash key maps to the first ring point at or after the key's hash (wrapping), and
 * the point's endpoint serves it. The ring is built once here and only read on the request path:
 * one hash of the key plus a binary search over a Float64Array.
 *
 * Sizing: the heaviest endpoint gets `minimumRingSize` points and every other endpoint
 * proportionally fewer (at least one), so the ring holds at least `minimumRingSize` points.
 * Envoy instead spreads the minimum over the whole set, which changes every endpoint's point
 * count whenever an endpoint comes or goes and moves keys between endpoints that stayed. Here an
 * endpoint's points depend only on its key and on its weight relative to the heaviest, so when
 * the heaviest weight is unchanged, churn moves only the keys of the endpoint that came or went.
 * The cost is memory: 8 bytes a point, N × minimumRingSize points for N equal endpoints, capped
 * at MAX_RING_SIZE (beyond which point counts are scaled down).
 *
 * A request without a hash key gets a random point, as Envoy does: a weighted random pick.
 */
export const ringHash: BalancerFactory<RingHashConfig> = (endpoints, config, { random }): Balancer => {
  // Key order, so that equal hashes (ties) resolve the same way whatever order EDS sent.
  const live = byKey(eligible(endpoints));
  const n = live.length;
  if (n === 0) return { pick: () => NO_HEALTHY_UPSTREAM };
  const results = pickResults(live);

  const heaviest = maxWeight(live);
  const counts = live.map((e) => Math.max(1, Math.round((config.minimumRingSize * e.weight) / heaviest)));
  let size = counts.reduce((a, b) => a + b, 0);
  if (size > MAX_RING_SIZE) {
    const scale = MAX_RING_SIZE / size;
    for (let i = 0; i < n; i++) counts[i] = Math.max(1, Math.floor(counts[i]! * scale));
    size = counts.reduce((a, b) => a + b, 0);
  }

  // Each ring entry packs a point's position and its endpoint's index into one exactly
  // representable double: the position's low `indexBits` bits are replaced by the index. Sorting
  // the array then sorts by position, natively and without a comparator (which matters at
  // millions of points), and lookup needs no second array. The lost position bits are noise.
  const indexBits = Math.ceil(Math.log2(n));
  const unit = 2 ** indexBits;
  const ring = new Float64Array(size);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const key = live[i]!.key;
    for (let point = 0; point < counts[i]!; point++) {
      const h = hash53(key, point);
      ring[k++] = h - (h % unit) + i;
    }
  }
  ring.sort();
  const last = size - 1;

  return {
    pick(ctx): Pick {
      const h = ctx.hashKey === undefined ? Math.floor(random.next() * TWO_POW_53) : hash53(ctx.hashKey);
      if (h > ring[last]!) return results[ring[0]! % unit]!;
      let lo = 0;
      let hi = last;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (ring[mid]! < h) lo = mid + 1;
        else hi = mid;
      }
      return results[ring[lo]! % unit]!;
    },
  };
};
