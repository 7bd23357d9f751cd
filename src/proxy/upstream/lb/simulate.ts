// simulate: a seeded discrete-event simulation of one proxy balancing a model service, to compare policies.

// Pure and deterministic: manual time, seeded randomness, no timers, so docs can quote its
// numbers and tests can assert on them. The model: `endpoints` identical replicas, each serving
// `concurrency` requests at a time and queueing the rest in arrival order; requests arrive as a
// Poisson process at `utilisation` of the fleet's capacity; service times are lognormal, whose
// long right tail stands in for inference (most completions are short, a few generate for long).
// Latency is arrival to completion, queueing included.

import type { LbConfig } from '../../../wire/snapshot.ts';
import type { LbEndpoint } from './balancer.ts';
import { ManualClock } from '../../../core/clock.ts';
import { seededRandom, type Random } from '../../../core/random.ts';
import { createBalancer } from './registry.ts';

export interface SimulationOptions {
  lb: LbConfig;
  /** Replicas of the model service (default 4). */
  endpoints?: number;
  /** Requests to simulate (default 50 000). */
  requests?: number;
  /** Offered load as a fraction of total capacity, in (0, 1) (default 0.8). */
  utilisation?: number;
  /** Mean service time of one request, in ms (default 100). */
  meanServiceMs?: number;
  /** σ of the service time's underlying normal; larger is a heavier tail (default 1.2). */
  serviceSigma?: number;
  /** Requests one replica serves at once; more wait in its queue (default 1). */
  concurrency?: number;
  /** Seeds the workload; the balancer gets its own stream, so policies see the same requests. */
  seed?: number;
}

export interface SimulationResult {
  requests: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Fraction of requests each endpoint served. */
  shares: number[];
}

/** Runs the simulation to completion (every request finishes) and summarises latency. */
export function simulate(options: SimulationOptions): SimulationResult {
  const endpoints = options.endpoints ?? 4;
  const requests = options.requests ?? 50_000;
  const utilisation = options.utilisation ?? 0.8;
  const meanService = options.meanServiceMs ?? 100;
  const sigma = options.serviceSigma ?? 1.2;
  const concurrency = options.concurrency ?? 1;
  const seed = options.seed ?? 1;
  if (!(utilisation > 0 && utilisation < 1)) throw new Error('simulate: utilisation must be in (0, 1)');

  // The workload is drawn up front from its own stream, identically for every policy.
  const workload = seededRandom(seed);
  const arrivalRate = (utilisation * endpoints * concurrency) / meanService; // requests per ms
  const mu = Math.log(meanService) - (sigma * sigma) / 2; // so the lognormal's mean is meanService
  const arrival = new Float64Array(requests);
  const service = new Float64Array(requests);
  let t = 0;
  for (let r = 0; r < requests; r++) {
    t += -Math.log(1 - workload.next()) / arrivalRate;
    arrival[r] = t;
    service[r] = Math.exp(mu + sigma * standardNormal(workload));
  }

  const clock = new ManualClock(0);
  const lbEndpoints: LbEndpoint[] = Array.from({ length: endpoints }, (_, i) => ({
    key: `10.0.0.${i + 1}:8000`,
    weight: 1,
    active: 0,
  }));
  const index = new Map(lbEndpoints.map((e, i) => [e, i]));
  const balancer = createBalancer(options.lb, lbEndpoints, { random: seededRandom(seed ^ 0x5bd1e995), clock });

  const serving = new Array<number>(endpoints).fill(0);
  const queues: number[][] = Array.from({ length: endpoints }, () => []);
  const served = new Array<number>(endpoints).fill(0);
  const servedBy = new Int32Array(requests);
  const latency = new Float64Array(requests);
  const completions = new EventHeap();

  const start = (r: number, e: number): void => {
    serving[e]!++;
    completions.push(clock.now() + service[r]!, r);
  };

  let next = 0;
  while (next < requests || completions.size > 0) {
    // Completions at the same instant as an arrival go first: the freed slot is visible to the pick.
    const isArrival = next < requests && (completions.size === 0 || arrival[next]! < completions.peekTime());
    const at = isArrival ? arrival[next]! : completions.peekTime();
    clock.advance(at - clock.now());
    if (isArrival) {
      const r = next++;
      const pick = balancer.pick({ hashKey: `request-${r}` });
      if (pick.kind !== 'picked') throw new Error('simulate: balancer failed with healthy endpoints');
      const e = index.get(pick.endpoint)!;
      pick.endpoint.active++;
      servedBy[r] = e;
      served[e]!++;
      if (serving[e]! < concurrency) start(r, e);
      else queues[e]!.push(r);
    } else {
      const r = completions.pop();
      const e = servedBy[r]!;
      latency[r] = at - arrival[r]!;
      lbEndpoints[e]!.active--;
      serving[e]!--;
      const waiting = queues[e]!.shift();
      if (waiting !== undefined) start(waiting, e);
    }
  }

  const sorted = latency.slice().sort();
  const quantile = (q: number): number => sorted[Math.min(requests - 1, Math.ceil(q * requests) - 1)]!;
  let sum = 0;
  for (const l of sorted) sum += l;
  return {
    requests,
    meanMs: sum / requests,
    p50Ms: quantile(0.5),
    p99Ms: quantile(0.99),
    p999Ms: quantile(0.999),
    maxMs: sorted[requests - 1]!,
    shares: served.map((s) => s / requests),
  };
}

/** Box–Muller: one standard normal draw from two uniforms. */
function standardNormal(random: Random): number {
  const u = 1 - random.next(); // (0, 1], so the log is finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random.next());
}

/** A binary min-heap of (time, request) completion events. */
class EventHeap {
  private readonly times: number[] = [];
  private readonly ids: number[] = [];

  get size(): number {
    return this.times.length;
  }

  peekTime(): number {
    return this.times[0]!;
  }

  push(time: number, id: number): void {
    let k = this.times.length;
    this.times.push(time);
    this.ids.push(id);
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (this.times[parent]! <= time) break;
      this.times[k] = this.times[parent]!;
      this.ids[k] = this.ids[parent]!;
      k = parent;
    }
    this.times[k] = time;
    this.ids[k] = id;
  }

  pop(): number {
    const top = this.ids[0]!;
    const lastTime = this.times.pop()!;
    const lastId = this.ids.pop()!;
    const n = this.times.length;
    if (n > 0) {
      let k = 0;
      for (;;) {
        let child = 2 * k + 1;
        if (child >= n) break;
        if (child + 1 < n && this.times[child + 1]! < this.times[child]!) child++;
        if (this.times[child]! >= lastTime) break;
        this.times[k] = this.times[child]!;
        this.ids[k] = this.ids[child]!;
        k = child;
      }
      this.times[k] = lastTime;
      this.ids[k] = lastId;
    }
    return top;
  }
}
