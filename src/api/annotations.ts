// Weft's streaming timeouts, carried by VirtualService annotations so Istio's YAML stays valid Istio.
//
// ```yaml
// metadata:
//   annotations:
//     weft.dev/first-byte-timeout: 5s          # every route of this VirtualService
//     weft.dev/idle-timeout: 2s
//     weft.dev/idle-timeout.chat-stream: 10s   # only the route named chat-stream (wins over the above)
// ```
//
// `first-byte-timeout`: from a try going upstream to the first byte of the answer's body (time to
// first token). `idle-timeout`: the longest gap between two chunks of the answer once it started.
// Istio ignores annotations it does not know, so the same file still applies to an Istio mesh.

import { checkIstioDuration, parseDurationNanos } from '../core/duration.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import type { RuleContext } from './rules.ts';

export const FIRST_BYTE_TIMEOUT_ANNOTATION = 'weft.dev/first-byte-timeout';
export const IDLE_TIMEOUT_ANNOTATION = 'weft.dev/idle-timeout';
const TIMEOUT_ANNOTATIONS = [FIRST_BYTE_TIMEOUT_ANNOTATION, IDLE_TIMEOUT_ANNOTATION];

export interface StreamingTimeouts {
  firstByteTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/** Which timeout an annotation key sets, and for which route (undefined: every route). */
function parseKey(key: string): { base: string; route?: string } | undefined {
  for (const base of TIMEOUT_ANNOTATIONS) {
    if (key === base) return { base };
    if (key.startsWith(`${base}.`)) return { base, route: key.slice(base.length + 1) };
  }
  return undefined;
}

function durationMs(value: string): number | undefined {
  const nanos = parseDurationNanos(value);
  if (nanos === undefined || checkIstioDuration(nanos)) return undefined;
  return Number(nanos / 1_000_000n);
}

/**
 * The streaming timeouts of one route: the route-named annotation wins over the
 * VirtualService-wide one. Values that are not valid durations were reported when the resource
 * was loaded (checkStreamingTimeouts), so here they are simply absent.
 */
export function streamingTimeouts(annotations: Readonly<Record<string, string>>, routeName: string | undefined): StreamingTimeouts {
  const pick = (base: string) => {
    const named = routeName !== undefined ? annotations[`${base}.${routeName}`] : undefined;
    const value = named ?? annotations[base];
    return value === undefined ? undefined : durationMs(value);
  };
  const out: StreamingTimeouts = {};
  const firstByte = pick(FIRST_BYTE_TIMEOUT_ANNOTATION);
  const idle = pick(IDLE_TIMEOUT_ANNOTATION);
  if (firstByte !== undefined) out.firstByteTimeoutMs = firstByte;
  if (idle !== undefined) out.idleTimeoutMs = idle;
  return out;
}

/**
 * Checks a VirtualService's `weft.dev/` timeout annotations: a valid duration (Istio's rules: at
 * least 1ms), and a route-named key must name one of `routeNames`. Other `weft.dev/` keys warn,
 * so a misspelt annotation is not silently ignored.
 */
export function checkStreamingTimeouts(ctx: RuleContext, routeNames: ReadonlySet<string>): void {
  for (const [key, value] of Object.entries(ctx.annotations)) {
    if (!key.startsWith('weft.dev/')) continue;
    const path = joinPath('metadata.annotations', key);
    const parsed = parseKey(key);
    if (!parsed) {
      ctx.warn(path, Codes.UNKNOWN_FIELD, `unknown Weft annotation ${JSON.stringify(key)}; known: ${TIMEOUT_ANNOTATIONS.join(', ')} (optionally .<route name>); it will be ignored`);
      continue;
    }
    const nanos = parseDurationNanos(value);
    const problem = nanos === undefined ? `invalid duration ${JSON.stringify(value)}` : checkIstioDuration(nanos);
    if (problem) ctx.error(path, problem);
    if (parsed.route !== undefined && !routeNames.has(parsed.route)) {
      ctx.error(path, `no route of this VirtualService is named ${JSON.stringify(parsed.route)} (named routes: ${[...routeNames].join(', ') || 'none'})`, Codes.UNKNOWN_FIELD);
    }
  }
}
