// RE2 regular expressions (the syntax Istio validates and Envoy runs): checking a pattern and translating it to JavaScript.
//
// Why translate rather than hand the pattern to `new RegExp`: the two dialects disagree both ways.
// JavaScript accepts things RE2 rejects (lookarounds, backreferences) — configuration that Istio
// would refuse must not quietly work here. RE2 accepts things JavaScript rejects or reads
// differently: `(?i)` flag groups, `\x{41}`, `\z`, `\Q…\E`, `[[:alpha:]]`, `(?P<name>…)`, a
// literal `{`, and `.` / `^` / `$` / `\s` differ in detail. So this file parses RE2 syntax,
// rejects what RE2 rejects (with RE2's reason), and emits an equivalent JavaScript source.
// Matching is always full-string, as in Envoy: `compileRe2` anchors the result as `^(?:…)$`.

export type Re2Translation = { ok: true; source: string } | { ok: false; reason: string };

/** Istio caps regex length (a stand-in for RE2's program size limit). */
export const MAX_REGEX_LENGTH = 1024;

class Re2Error extends Error {}

interface Flags {
  i: boolean; // case-insensitive
  m: boolean; // ^ and $ match at line boundaries
  s: boolean; // . matches \n
  U: boolean; // ungreedy: swap x* and x*?
}

const MAX_REPEAT = 1000;
const MAX_DEPTH = 1000;

// Characters that must be escaped to be literal in a JavaScript `u`-mode pattern.
const JS_SYNTAX = new Set('^$\\.*+?()[]{}|/');
// ... and inside a character class.
const JS_CLASS_SYNTAX = new Set('\\]-^[');

const SPACE_CHARS = '\\t\\n\\f\\r '; // RE2's \s is exactly [\t\n\f\r ], narrower than JavaScript's

const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\u{0}-\\u{7f}',
  blank: '\\t ',
  cntrl: '\\u{0}-\\u{1f}\\u{7f}',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\u{b}\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

// Unicode general categories RE2 knows by their short names; anything else is a script name.
const GENERAL_CATEGORIES = new Set(
  'C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs'.split(' '),
);

function hex(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

function literal(cp: number, inClass: boolean): string {
  const ch = String.fromCodePoint(cp);
  if (cp < 0x20 || cp === 0x7f) return hex(cp);
  if ((inClass ? JS_CLASS_SYNTAX : JS_SYNTAX).has(ch)) return `\\${ch}`;
  return ch;
}

function isWordChar(ch: string | undefined): boolean {
  return ch !== undefined && /^[A-Za-z0-9_]$/.test(ch);
}

/** A single class member: one code point, or a whole set such as `\d` (which cannot end a range). */
type ClassAtom = { cp: number } | { set: string };

function translate(p: string): string {
  let i = 0;
  const captureNames = new Set<string>();
  const fail = (reason: string): never => {
    throw new Re2Error(reason);
  };

  const codePointAt = (at: number): number => p.codePointAt(at)!;
  const width = (cp: number): number => (cp > 0xffff ? 2 : 1);

  /** Reads up to `max` octal digits at i (the first may already be consumed by the caller). */
  const readOctal = (first: string): number => {
    let digits = first;
    while (digits.length < 3 && /[0-7]/.test(p[i] ?? '')) digits += p[i++];
    return parseInt(digits, 8);
  };

  /** `\x41` or `\x{1F600}`, with i just past the `x`. */
  const readHex = (): number => {
    if (p[i] === '{') {
      const close = p.indexOf('}', i);
      const digits = close < 0 ? '' : p.slice(i + 1, close);
      if (!/^[0-9A-Fa-f]{1,8}$/.test(digits) || parseInt(digits, 16) > 0x10ffff) fail(`invalid escape sequence: \`\\x${p.slice(i, close + 1)}\``);
      i = close + 1;
      return parseInt(digits, 16);
    }
    const digits = p.slice(i, i + 2);
    if (!/^[0-9A-Fa-f]{2}$/.test(digits)) fail(`invalid escape sequence: \`\\x${digits}\``);
    i += 2;
    return parseInt(digits, 16);
  };

  /** `\pL`, `\p{Greek}`, `\P{Lu}`, `\p{^Lu}`, with i just past the `p`/`P`. */
  const readUnicodeClass = (negated: boolean, inClass: boolean): string => {
    let name: string;
    if (p[i] === '{') {
      const close = p.indexOf('}', i);
      if (close < 0) fail('invalid character class range: missing } in \\p{...}');
      name = p.slice(i + 1, close);
      i = close + 1;
    } else {
      if (i >= p.length) fail('invalid character class range: \\p at end of expression');
      name = p[i++]!;
    }
    if (name.startsWith('^')) {
      negated = !negated;
      name = name.slice(1);
    }
    let js: string;
    if (name === 'Any') {
      // Every code point; inside brackets only the positive form can be written as a range.
      if (inClass && negated) fail('`\\P{Any}` inside a character class is valid RE2 but not supported by Weft');
      js = inClass ? '\\u{0}-\\u{10ffff}' : negated ? '[^\\u{0}-\\u{10ffff}]' : '[\\u{0}-\\u{10ffff}]';
    } else {
      const property = GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
      js = `\\${negated ? 'P' : 'p'}{${property}}`;
    }
    try {
      new RegExp(inClass ? `[${js}]` : js, 'u');
    } catch {
      fail(`invalid character class range: unknown Unicode class \`${name}\``);
    }
    return js;
  };

  /** An escape inside a character class, with i just past the backslash. */
  const classEscape = (inClass: boolean): ClassAtom => {
    if (i >= p.length) fail('trailing backslash at end of expression');
    const c = p[i++]!;
    switch (c) {
      case 'd': return { set: '0-9' };
      case 'D': return { set: '\\D' };
      case 'w': return { set: '0-9A-Za-z_' };
      case 'W': return { set: '\\W' };
      case 's': return { set: SPACE_CHARS };
      case 'S': return { set: '\\S' };
      case 'p': return { set: readUnicodeClass(false, inClass) };
      case 'P': return { set: readUnicodeClass(true, inClass) };
      case 'x': return { cp: readHex() };
      case 'a': return { cp: 7 };
      case 'f': return { cp: 12 };
      case 't': return { cp: 9 };
      case 'n': return { cp: 10 };
      case 'r': return { cp: 13 };
      case 'v': return { cp: 11 };
      case '0': return { cp: readOctal('0') };
    }
    if (c >= '1' && c <= '7' && /[0-7]/.test(p[i] ?? '')) return { cp: readOctal(c) };
    if (c.charCodeAt(0) < 0x80 && !/[A-Za-z0-9]/.test(c)) return { cp: c.charCodeAt(0) };
    return fail(`invalid escape sequence: \`\\${c}\``);
  };

  const classAtom = (): ClassAtom => {
    if (p[i] === '\\') {
      i++;
      return classEscape(true);
    }
    const cp = codePointAt(i);
    i += width(cp);
    return { cp };
  };

  const classMember = (atom: ClassAtom): string => ('set' in atom ? atom.set : literal(atom.cp, true));

  /** `[...]`, with i at the `[`. */
  const parseClass = (): string => {
    const start = i;
    i++;
    const negated = p[i] === '^';
    if (negated) i++;
    let body = '';
    let first = true;
    for (;;) {
      if (i >= p.length) fail(`missing closing ]: \`${p.slice(start)}\``);
      if (p[i] === ']' && !first) {
        i++;
        break;
      }
      first = false;
      if (p.startsWith('[:', i)) {
        const close = p.indexOf(':]', i + 2);
        if (close >= 0) {
          let name = p.slice(i + 2, close);
          const negatedPosix = name.startsWith('^');
          if (negatedPosix) name = name.slice(1);
          const ranges = POSIX_CLASSES[name];
          if (ranges === undefined) fail(`invalid character class range: \`${p.slice(i, close + 2)}\``);
          // A negated POSIX class can only be expressed in JavaScript when it is the whole class.
          if (negatedPosix) {
            if (!negated && body === '' && p[close + 2] === ']') {
              i = close + 3;
              return `[^${ranges}]`;
            }
            fail(`\`[:^${name}:]\` is valid RE2 but Weft only supports it as a class of its own, e.g. \`[[:^${name}:]]\``);
          }
          body += ranges;
          i = close + 2;
          continue;
        }
      }
      const lo = classAtom();
      if (p[i] === '-' && p[i + 1] !== ']' && i + 1 < p.length) {
        const rangeStart = i;
        i++;
        const hi = classAtom();
        if ('set' in lo || 'set' in hi || hi.cp < lo.cp) {
          fail(`invalid character class range: \`${p.slice(rangeStart - 1, i)}\``);
        }
        body += `${classMember(lo)}-${classMember(hi)}`;
      } else {
        body += classMember(lo);
      }
    }
    return `[${negated ? '^' : ''}${body}]`;
  };

  /** A repeat `{n}`, `{n,}` or `{n,m}` at i, or undefined when the brace is a literal. */
  const readRepeat = (): { text: string; length: number } | undefined => {
    const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(p.slice(i));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[3] ? Number(m[3]) : min;
    if (min > MAX_REPEAT || max > MAX_REPEAT || (m[3] && max < min)) fail(`invalid repeat count: \`${m[0]}\``);
    return { text: m[0], length: m[0].length };
  };

  /**
   * One level of alternation: up to a `)` or the end. Flags set by `(?i)` last until the end of
   * the enclosing group, across `|`; JavaScript modifier groups cannot span alternatives, so an
   * open `(?i:` is closed before each `|` and reopened after it.
   */
  const parseAlternation = (outer: Flags, depth: number): string => {
    if (depth > MAX_DEPTH) fail('expression nests too deeply');
    const flags: Flags = { ...outer };
    let out = '';
    const modifiers: string[] = [];
    let atomStart = -1; // where in `out` the last repeatable item starts; -1: nothing to repeat
    let atomIsAssertion = false;
    let afterRepeat = false;

    const atom = (js: string, assertion = false) => {
      atomStart = out.length;
      atomIsAssertion = assertion;
      afterRepeat = false;
      out += js;
    };

    while (i < p.length) {
      const c = p[i]!;
      if (c === ')') break;

      if (c === '|') {
        out += ')'.repeat(modifiers.length) + '|' + modifiers.join('');
        i++;
        atomStart = -1;
        afterRepeat = false;
        continue;
      }

      const repeat = c === '{' ? readRepeat() : undefined;
      if (c === '*' || c === '+' || c === '?' || repeat) {
        const op = repeat ? repeat.text : c;
        if (afterRepeat) fail(`invalid nested repetition operator: \`${op}\` after another repetition`);
        if (atomStart < 0) fail(`missing argument to repetition operator: \`${op}\``);
        i += op.length;
        let lazy = p[i] === '?';
        if (lazy) i++;
        if (flags.U) lazy = !lazy;
        // JavaScript cannot repeat a bare assertion (`^*`); a non-capturing group can.
        if (atomIsAssertion) out = `${out.slice(0, atomStart)}(?:${out.slice(atomStart)})`;
        out += op + (lazy ? '?' : '');
        afterRepeat = true;
        continue;
      }

      switch (c) {
        case '(': {
          if (p[i + 1] !== '?') {
            i++;
            const inner = parseAlternation(flags, depth + 1);
            if (p[i] !== ')') fail(`missing closing ): \`${p}\``);
            i++;
            atom(`(${inner})`);
            break;
          }
          const rest = p.slice(i + 2);
          if (rest.startsWith('P<') || (rest.startsWith('<') && !rest.startsWith('<=') && !rest.startsWith('<!'))) {
            // Named capture: the name has no effect on matching, so emit a plain group (JavaScript
            // group names are stricter than RE2's: no leading digit).
            i += rest.startsWith('P<') ? 4 : 3;
            const close = p.indexOf('>', i);
            const name = close < 0 ? '' : p.slice(i, close);
            if (!/^[A-Za-z0-9_]+$/.test(name)) fail(`invalid named capture: \`${p.slice(i - 3, close + 1)}\``);
            if (captureNames.has(name)) fail(`duplicate capture group name: \`${name}\``);
            captureNames.add(name);
            i = close + 1;
            const inner = parseAlternation(flags, depth + 1);
            if (p[i] !== ')') fail(`missing closing ): \`${p}\``);
            i++;
            atom(`(${inner})`);
            break;
          }
          if (rest.startsWith('=') || rest.startsWith('!')) fail(`lookahead \`(?${rest[0]}\` is not supported by RE2`);
          if (rest.startsWith('<=') || rest.startsWith('<!')) fail(`lookbehind \`(?${rest.slice(0, 2)}\` is not supported by RE2`);
          if (rest.startsWith('>')) fail('atomic groups `(?>` are not supported by RE2');
          if (rest.startsWith('P=') || rest.startsWith('P>') || rest.startsWith('&') || /^R\)|^[0-9+-]+\)/.test(rest)) {
            fail(`backreferences and recursion (\`(?${rest.slice(0, 2)}\`) are not supported by RE2`);
          }
          // Flags: (?flags) changes the rest of this group; (?flags:re) scopes them to re.
          const m = /^([imsU]*)(?:-([imsU]*))?([:)])/.exec(rest);
          if (!m || (m[1] === '' && m[2] === undefined) || m[2] === '') {
            fail(`invalid or unsupported Perl syntax: \`(?${rest.slice(0, 1)}\``);
          }
          const next: Flags = { ...flags };
          for (const f of m![1]!) next[f as keyof Flags] = true;
          for (const f of m![2] ?? '') next[f as keyof Flags] = false;
          const modifier = next.i === flags.i ? '' : next.i ? '(?i:' : '(?-i:';
          i += 2 + m![0].length;
          if (m![3] === ')') {
            Object.assign(flags, next);
            if (modifier) {
              out += modifier;
              modifiers.push(modifier);
            }
            atomStart = -1; // RE2: a flag group is not something to repeat
            afterRepeat = false;
            break;
          }
          const inner = parseAlternation(next, depth + 1);
          if (p[i] !== ')') fail(`missing closing ): \`${p}\``);
          i++;
          atom(`${modifier || '(?:'}${inner})`);
          break;
        }
        case '[':
          atom(parseClass());
          break;
        case '.':
          i++;
          atom(flags.s ? '[\\s\\S]' : '[^\\n]'); // RE2's . excludes only \n, JavaScript's also \r, \u2028...
          break;
        case '^':
          i++;
          atom(flags.m ? '(?:^|(?<=\\n))' : '^', true);
          break;
        case '$':
          i++;
          atom(flags.m ? '(?:$|(?=\\n))' : '$', true);
          break;
        case '\\': {
          i++;
          if (i >= p.length) fail('trailing backslash at end of expression');
          const e = p[i]!;
          if (e === 'Q') {
            // \Q...\E: everything up to \E (or the end) is literal; a repeat binds to the last character.
            i++;
            const end = p.indexOf('\\E', i);
            const text = end < 0 ? p.slice(i) : p.slice(i, end);
            i = end < 0 ? p.length : end + 2;
            for (const ch of text) atom(literal(ch.codePointAt(0)!, false));
            break;
          }
          if (e === 'A') {
            i++;
            atom('^', true);
            break;
          }
          if (e === 'z') {
            i++;
            atom('$', true);
            break;
          }
          if (e === 'b' || e === 'B') {
            i++;
            atom(`\\${e}`, true);
            break;
          }
          if (e === 'C') fail('`\\C` (any byte) is valid RE2 but not supported by Weft');
          if (e === 'k' || e === 'g') fail(`backreferences (\`\\${e}\`) are not supported by RE2`);
          if (e >= '1' && e <= '9' && !(e <= '7' && /[0-7]/.test(p[i + 1] ?? ''))) {
            fail(`backreferences (\`\\${e}\`) are not supported by RE2`);
          }
          const member = classEscape(false);
          if ('set' in member) {
            // Perl classes outside brackets: \d, \s, \pL... become a JavaScript class of their own.
            const set = member.set;
            atom(set.startsWith('[') || /^\\[DWSpP]/.test(set) ? set : `[${set}]`);
          } else {
            atom(literal(member.cp, false));
          }
          break;
        }
        default: {
          const cp = codePointAt(i);
          i += width(cp);
          atom(literal(cp, false)); // includes `]`, `}` and a `{` that does not start a repeat
        }
      }
    }
    return out + ')'.repeat(modifiers.length);
  };

  const source = parseAlternation({ i: false, m: false, s: false, U: false }, 0);
  if (i < p.length) fail(`unexpected ): \`${p}\``);
  return source;
}

/** Checks a pattern against RE2's syntax and translates it; the result matches as a whole string. */
export function translateRe2(pattern: string): Re2Translation {
  if (pattern.length > MAX_REGEX_LENGTH) {
    return { ok: false, reason: `regex is too large, max length allowed is ${MAX_REGEX_LENGTH}` };
  }
  let source: string;
  try {
    source = translate(pattern);
  } catch (err) {
    if (err instanceof Re2Error) return { ok: false, reason: err.message };
    throw err;
  }
  try {
    new RegExp(`^(?:${source})$`, 'u');
  } catch (err) {
    // Valid RE2 that this translation cannot express; a gap in Weft, not in the user's config.
    return { ok: false, reason: `valid RE2 is not supported by Weft: ${(err as Error).message}` };
  }
  return { ok: true, source };
}

/** The problem with an RE2 pattern, or undefined when Istio would accept it and Weft can run it. */
export function checkRe2(pattern: string): string | undefined {
  const t = translateRe2(pattern);
  return t.ok ? undefined : t.reason;
}

/**
 * A JavaScript RegExp that matches exactly the strings the RE2 pattern matches in full — what
 * Envoy's `safe_regex` does. Throws with RE2's reason when the pattern is not valid RE2.
 */
export function compileRe2(pattern: string): RegExp {
  const t = translateRe2(pattern);
  if (!t.ok) throw new Error(`invalid RE2 regex ${JSON.stringify(pattern)}: ${t.reason}`);
  return new RegExp(`^(?:${t.source})$`, 'u');
}
