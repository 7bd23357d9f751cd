// StringMatch compiled once into a predicate: exact, raw prefix, or RE2-style full-string regex.

import type { StringMatchConfig } from '../../wire/snapshot.ts';
import { compileRe2 } from '../../core/re2.ts';

export type StringPredicate = (value: string) => boolean;

/**
 * Istio's regex is RE2 with full-string matching. Constructs RE2 rejects (lookarounds,
 * backreferences) were refused at validation; a pattern that still fails here throws, and the
 * snapshot carrying it is NACKed.
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
    // ignoreUriCase does not apply to regex in Istio. compileRe2 anchors the pattern and
    // translates RE2's dialect ((?i), \x{41}, [[:alpha:]], …) to an equivalent JavaScript one.
    const re = compileRe2(m.regex);
    return (v) => re.test(v);
  }
  throw new Error(`string match must have exact, prefix or regex: ${JSON.stringify(m)}`);
}
