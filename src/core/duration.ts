// Duration strings as Istio reads them ("10s", "1.5s", "300ms", "1h30m"): parsing and Istio's range rules.

// Istio's CRDs check durations with CEL's duration(), which follows Go's time.ParseDuration:
// an optional sign, then one or more <decimal><unit> pairs. protobuf's own JSON form ("1.5s")
// is a subset of this.
const UNIT_NANOS: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const PART = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;

/** Parses a duration to nanoseconds; undefined when the text is not a duration. */
export function parseDurationNanos(text: string): bigint | undefined {
  let rest = text;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n; // Go accepts a bare zero without a unit
  if (rest === '') return undefined;
  let total = 0n;
  while (rest !== '') {
    const m = PART.exec(rest);
    if (!m) return undefined;
    const [whole, intDigits = '', fracDigits = '', unit] = m;
    if (intDigits === '' && fracDigits === '') return undefined; // "s" or ".s"
    const scale = UNIT_NANOS[unit!]!;
    let value = BigInt(intDigits || '0') * scale;
    if (fracDigits !== '') {
      // Exact decimal arithmetic: Go truncates sub-nanosecond digits, so do we.
      value += (BigInt(fracDigits) * scale) / 10n ** BigInt(fracDigits.length);
    }
    total += value;
    rest = rest.slice(whole.length);
  }
  return sign * total;
}

/** Parses a duration to (possibly fractional) milliseconds; undefined when invalid. */
export function parseDuration(text: string): number | undefined {
  const nanos = parseDurationNanos(text);
  return nanos === undefined ? undefined : Number(nanos) / 1e6;
}

const MS = 1_000_000n;

/**
 * Istio's rule for nearly every duration field: at least 1ms and a whole number of
 * milliseconds (Envoy works in ms). Returns the problem, or undefined when the value is fine.
 */
export function checkIstioDuration(nanos: bigint): string | undefined {
  if (nanos < MS) return 'must be a valid duration greater than 1ms';
  if (nanos % MS !== 0n) return 'only durations to ms precision are supported';
  return undefined;
}
