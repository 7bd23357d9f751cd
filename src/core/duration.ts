// Durations as Istio writes them (protobuf Duration strings: "10s", "1.5s", "300ms", "1h").

const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000001 };
const PART = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/y;

/** Milliseconds for a duration string, or undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || text.length === 0) return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const m = PART.exec(text);
    if (!m || m.index !== start) return undefined;
    total += Number(m[1]) * UNIT_MS[m[2]];
  }
  return total;
}
