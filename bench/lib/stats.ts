// Small statistics helpers: nearest-rank percentiles, and median with min–max over rounds.

/** Nearest-rank percentile of an ascending-sorted array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const k = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[k];
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** Every round's value, in round order. */
  values: number[];
}

/** Median (mean of the middle two for an even count) with min and max; NaN values are ignored. */
export function spread(values: readonly number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length === 0 ? NaN : s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s.length ? s[0] : NaN, max: s.length ? s[s.length - 1] : NaN, values: [...values] };
}
