// Request path normalisation, done once before authorization and routing, as Istio configures Envoy.
//
// Istio's meshConfig `pathNormalization.normalization` picks one of these (istio.io "Authorization
// Policy Normalization" and "Security best practices"; pilot's HTTP connection manager setup):
//
// - NONE: nothing changes (the fragment is still dropped).
// - BASE (Istio's default): Envoy `normalize_path` — RFC 3986 §6.2.2 percent-decoding of unreserved
//   characters (ALPHA, DIGIT, `-`, `.`, `_`, `~`), backslashes become `/`, then dot segments are
//   removed (RFC 3986 §5.2.4). Everything else percent-encoded stays as sent (case kept).
// - MERGE_SLASHES: BASE, then `merge_slashes` (`//` → `/`).
// - DECODE_AND_MERGE_SLASHES: first `%2F %2f %5C %5c` are decoded
//   (`path_with_escaped_slashes_action: UNESCAPE_AND_FORWARD`), then BASE, then merge slashes.
//
// Istio's default, BASE, lets `//admin` and `/admin%2Fx` past a rule on `/admin` and `/admin/*`
// (Istio's docs name this CVE-2021-31920 and tell users to pick a stricter option). Weft defaults
// to DECODE_AND_MERGE_SLASHES, the strictest, so these tricks never bypass a policy out of the box;
// the other modes exist so a mesh can ask for Istio's exact behaviour.
//
// Always refused (HTTP 400), whatever the mode: `%00` (Istio: "the request will always be rejected"),
// control characters and spaces, a `%` not followed by two hex digits, and a path that does not
// start with `/` (only `*`, for `OPTIONS *`, passes unchanged). Non-ASCII characters are
// percent-encoded as UTF-8, as Envoy's canonicaliser does.
//
// The normalised path is what policies see AND what is forwarded to the app, so the app can never
// act on a path other than the one that was authorized.

export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'DECODE_AND_MERGE_SLASHES';

export type NormalizedPath =
  /** `path` has no query; `query` is `''` or starts with `?`; `target` is the two joined, to forward. */
  | { ok: true; path: string; query: string; target: string }
  /** The request must be refused with 400; `reason` says why (for the access log, not the client). */
  | { ok: false; reason: string };

const HEX = /^[0-9a-fA-F]{2}$/;
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** Normalises a request target (`/path?query#fragment`, origin form). */
export function normalizePath(target: string, mode: PathNormalization = DEFAULT_PATH_NORMALIZATION): NormalizedPath {
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const rawPath = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q) : '';

  const problem = checkTarget(rawPath) ?? checkQuery(query);
  if (problem) return { ok: false, reason: problem };
  if (rawPath === '*') return { ok: true, path: '*', query, target: '*' + query };
  // Normalisation turns a leading backslash into a slash; with NONE it stays and the target is refused.
  if (!rawPath.startsWith('/') && !(mode !== 'NONE' && rawPath.startsWith('\\'))) {
    return { ok: false, reason: `path must start with "/": ${JSON.stringify(rawPath.slice(0, 64))}` };
  }

  const encoded = encodeNonAscii(rawPath);
  if (encoded === undefined) return { ok: false, reason: 'path is not valid Unicode' };
  let path = encoded;
  if (mode !== 'NONE') {
    path = decodeEscapes(path, mode === 'DECODE_AND_MERGE_SLASHES');
    path = removeDotSegments(path.replaceAll('\\', '/'));
    if (mode !== 'BASE') path = path.replace(/\/{2,}/g, '/');
  }
  return { ok: true, path, query, target: path + query };
}

/** Refuses NUL (raw or `%00`), control characters, spaces and broken percent-escapes. */
function checkTarget(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return `control character or space in path (0x${c.toString(16).padStart(2, '0')})`;
    if (c !== 0x25) continue; // '%'
    const hex = text.slice(i + 1, i + 3);
    if (!HEX.test(hex)) return `malformed percent-encoding in path at offset ${i}`;
    if (hex === '00') return 'percent-encoded NUL (%00) in path';
    i += 2;
  }
  return undefined;
}

// The query is not normalised (Envoy leaves it alone) but may not carry NUL or control bytes either.
function checkQuery(query: string): string | undefined {
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return `control character or space in query (0x${c.toString(16).padStart(2, '0')})`;
  }
  return /%00/.test(query) ? 'percent-encoded NUL (%00) in query' : undefined;
}

/** Non-ASCII as UTF-8 percent-escapes; undefined for text that is not valid Unicode (a lone surrogate). */
function encodeNonAscii(path: string): string | undefined {
  if (!/[^\x00-\x7f]/.test(path)) return path;
  try {
    return path.replace(/[^\x00-\x7f]+/gu, (s) => encodeURIComponent(s));
  } catch {
    return undefined;
  }
}

/** One pass: unreserved characters always, `/` and `\` only when asked; the rest stays encoded. */
function decodeEscapes(path: string, slashes: boolean): string {
  return path.replace(/%([0-9a-fA-F]{2})/g, (whole, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    if (UNRESERVED.test(ch)) return ch;
    if (slashes && (ch === '/' || ch === '\\')) return ch;
    return whole;
  });
}

/** RFC 3986 §5.2.4 on an absolute path: `.` segments go, `..` removes the segment before it (never above the root). */
function removeDotSegments(path: string): string {
  const input = path.split('/').slice(1); // path starts with '/'
  const out: string[] = [];
  for (let i = 0; i < input.length; i++) {
    const seg = input[i]!;
    const last = i === input.length - 1;
    if (seg === '.' || seg === '..') {
      if (seg === '..') out.pop();
      // A trailing dot segment leaves the path ending in '/'.
      if (last) out.push('');
      continue;
    }
    out.push(seg);
  }
  return '/' + out.join('/');
}
