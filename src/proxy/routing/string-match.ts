// StringMatch compiled once into a predicate: exact, raw prefix, or RE2-style full-string regex.

import type { StringMatchConfig } from '../../wire/snapshot.ts';

export type StringPredicate = (value: string) => boolean;

/**
 * Istio's regex is RE2 with full-string matching, so a JavaScript RegExp must be anchored.
 * Constructs RE2 rejects (lookarounds, backreferences) were refused at validation; a pattern that
 * still fails to compile here throws, and the snapshot carrying it is NACKed.
 */
export function compileStringMatch(m: StringMatchConfig, ignoreCase = false): StringPredicate {
  if ('exact' in m) {
    if (!ignoreCase) return (v) => v === m.exact;
    const want = m.exact.toLowerCase();
    return (v) => v.toLowerCase() === want;
  }
  if ('prefix' in m) {
    if (!ignoreCase) return (v) => v.startsWith(m.prefix);
    const want = m.prefix.toLowerCase();
    return (v) => v.toLowerCase().startsWith(want);
  }
  if ('regex' in m) {
    // ignoreUriCase does not apply to regex in Istio.
    const re = new RegExp(`^(?:${m.regex})$`, 'u');
    return (v) => re.test(v);
  }
  throw new Error(`string match must have exact, prefix or regex: ${JSON.stringify(m)}`);
}
