// Clock: the one source of time for pure logic, so tests drive it by hand instead of sleeping.

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
}

/**
 * Milliseconds on a monotonic scale, from `process.hrtime()`. Not `performance.now()`: the first
 * touch of the `performance` global loads node's perf_hooks implementation, ~0.3 MiB in every
 * proxy process for the same kind of number.
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

export const systemClock: Clock = {
  now: monotonicMs,
};

/** A clock that only moves when a test tells it to. */
export class ManualClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
