// Clock: the one source of time for pure logic, so tests drive it by hand instead of sleeping.

export interface Clock {
  /** Milliseconds on a monotonic scale (not wall-clock time). */
  now(): number;
}

export const systemClock: Clock = {
  now: () => performance.now(),
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
