// A small declarative schema language for mesh files, and the validator that checks YAML nodes against it.
//
// Schemas are built from a few constructors (`obj`, `str`, `int`, `listOf`, `mapOf`, ...) and
// checked directly against the YAML syntax tree, so every diagnostic carries the exact field path
// and the line:col of the offending node. A check returns the normalised value (camelCase field
// names, aliases resolved); a value that fails its check is left out, and a list keeps an
// `undefined` hole in its place so that later rules still name items by their real index.
import { isMap, isScalar, isSeq, type Node, type Pair, type Scalar } from 'yaml';
import type { Diagnostic, Severity } from './types.ts';
import { Codes, makeDiagnostic } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { entryOffset, isNullNode, keyString, posAt, resolveNode, snakeToCamel, startOf, type YamlSource } from './positions.ts';
import { checkIstioDuration, parseDurationNanos } from '../core/duration.ts';

export interface CheckContext extends YamlSource {
  /**
   * Istio kinds are read with protobuf's JSON mapping, which accepts a field's original
   * snake_case name (`retry_on`) as well as its JSON camelCase name (`retryOn`).
   */
  protoNames: boolean;
  diagnostics: Diagnostic[];
}

/** The field being checked: its path, and the source offset to blame for problems with it. */
export interface Site {
  path: string;
  offset: number;
}

export interface Schema<T = unknown> {
  /** What the value should be, as used in "expected X, got Y": "a string", "a list". */
  readonly expected: string;
  /** Checks a (non-null) node; returns the normalised value, or undefined when it is unusable. */
  check(node: Node, site: Site, ctx: CheckContext): T | undefined;
}

/** A per-value rule: returns what is wrong with the value, or undefined when it is fine. */
export type ValueRule<T> = (value: T) => string | undefined;

export function report(ctx: CheckContext, severity: Severity, code: string, site: Site, text: string): void {
  ctx.diagnostics.push(makeDiagnostic(severity, code, site.path, text, posAt(ctx, site.offset)));
}

function describe(node: Node): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    if (typeof v === 'number') return `the number ${v}`;
    if (typeof v === 'boolean') return String(v);
  }
  return 'an unsupported YAML value';
}

function typeError(ctx: CheckContext, site: Site, expected: string, node: Node): undefined {
  let text = `expected ${expected}, got ${describe(node)}`;
  // YAML reads `version: 1.0` or `enabled: yes`-style values as numbers/booleans; say how to fix it.
  if (expected.includes('string') && isScalar(node) && (typeof node.value === 'number' || typeof node.value === 'boolean')) {
    text += ' (quote it to make it a string)';
  }
  report(ctx, 'error', Codes.INVALID_TYPE, site, text);
  return undefined;
}

function invalid(ctx: CheckContext, site: Site, text: string): undefined {
  report(ctx, 'error', Codes.INVALID_VALUE, site, text);
  return undefined;
}

// ---- scalars ---------------------------------------------------------------------------------

export interface StringOptions {
  minLength?: number;
  maxLength?: number;
  rule?: ValueRule<string>;
}

/**
 * `[1.2.3.4, 2001:db8::]`: by the YAML 1.2 spec a plain scalar in a flow collection cannot end
 * in `:` before `]` or `,`, so `2001:db8::` reads as a one-entry map `{"2001:db8:": null}`.
 * go-yaml, which kubectl and Istio use, reads it as the string, and real configs rely on that;
 * so where a string is expected, such a map (key immediately followed by its colon, no value)
 * is read back as the string it was written as.
 */
function goYamlFlowString(node: Node): string | undefined {
  if (!isMap(node) || !node.flow || node.items.length !== 1) return undefined;
  const pair = node.items[0]!;
  const key = pair.key;
  const value = pair.value;
  if (!isScalar(key) || typeof key.value !== 'string' || key.type !== 'PLAIN' || !key.range || !node.range) return undefined;
  if (!isScalar(value) || value.value !== null || value.source !== '') return undefined;
  return node.range[1] === key.range[1] + 1 ? `${key.value}:` : undefined;
}

export function str(opts: StringOptions = {}): Schema<string> {
  return {
    expected: 'a string',
    check(node, site, ctx) {
      const compat = goYamlFlowString(node);
      if (compat === undefined && (!isScalar(node) || typeof node.value !== 'string')) return typeError(ctx, site, this.expected, node);
      const v = compat ?? ((node as Scalar).value as string);
      if (opts.minLength !== undefined && v.length < opts.minLength) {
        return invalid(ctx, site, opts.minLength === 1 ? 'must not be empty' : `must be at least ${opts.minLength} characters long`);
      }
      if (opts.maxLength !== undefined && v.length > opts.maxLength) {
        return invalid(ctx, site, `must be at most ${opts.maxLength} characters long`);
      }
      const problem = opts.rule?.(v);
      if (problem) return invalid(ctx, site, problem);
      return v;
    },
  };
}

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;
export const UINT32_MAX = 4294967295;

export interface NumberOptions {
  min?: number;
  max?: number;
  /** The minimum itself is not allowed (`> 0` rather than `>= 0`). */
  exclusiveMin?: boolean;
  rule?: ValueRule<number>;
}

function rangeText(min: number | undefined, max: number | undefined, exclusiveMin: boolean | undefined): string {
  if (exclusiveMin && min !== undefined) return max === undefined ? `must be greater than ${min}` : `must be greater than ${min} and at most ${max}`;
  if (min !== undefined && max !== undefined) return `must be between ${min} and ${max}`;
  if (min !== undefined) return `must be at least ${min}`;
  return `must be at most ${max}`;
}

function numberSchema(expected: string, integer: boolean, opts: NumberOptions): Schema<number> {
  return {
    expected,
    check(node, site, ctx) {
      if (!isScalar(node) || typeof node.value !== 'number' || !Number.isFinite(node.value)) {
        return typeError(ctx, site, expected, node);
      }
      const v = node.value;
      if (integer && !Number.isInteger(v)) return typeError(ctx, site, expected, node);
      const { min, max, exclusiveMin } = opts;
      if ((min !== undefined && (exclusiveMin ? v <= min : v < min)) || (max !== undefined && v > max)) {
        return invalid(ctx, site, rangeText(min, max, exclusiveMin));
      }
      const problem = opts.rule?.(v);
      if (problem) return invalid(ctx, site, problem);
      return v;
    },
  };
}

/** protobuf int32 unless narrowed with min/max. */
export function int(opts: NumberOptions = {}): Schema<number> {
  return numberSchema('an integer', true, { min: INT32_MIN, max: INT32_MAX, ...opts });
}

export function uint32(opts: NumberOptions = {}): Schema<number> {
  return numberSchema('an integer', true, { min: 0, max: UINT32_MAX, ...opts });
}

/** A port number, 1..65535. */
export function port(): Schema<number> {
  return numberSchema('an integer', true, { min: 1, max: 65535 });
}

/** A double. */
export function num(opts: NumberOptions = {}): Schema<number> {
  return numberSchema('a number', false, opts);
}

export function bool(): Schema<boolean> {
  return {
    expected: 'a boolean (true or false)',
    check(node, site, ctx) {
      if (!isScalar(node) || typeof node.value !== 'boolean') return typeError(ctx, site, this.expected, node);
      return node.value;
    },
  };
}

/** One of a fixed set of names (protobuf enums are written by name in YAML). */
export function enumOf<const T extends string>(values: readonly T[]): Schema<T> {
  return {
    expected: `one of ${values.join(', ')}`,
    check(node, site, ctx) {
      if (!isScalar(node) || typeof node.value !== 'string') return typeError(ctx, site, `a string (${this.expected})`, node);
      if (!(values as readonly string[]).includes(node.value)) {
        return invalid(ctx, site, `unsupported value ${JSON.stringify(node.value)}: must be ${this.expected}`);
      }
      return node.value as T;
    },
  };
}

export interface DurationOptions {
  /**
   * Apply Istio's usual rule (at least 1ms, whole milliseconds). The few fields Istio leaves
   * unchecked (cookie ttl, TCP idle timeout, where 0s has a meaning) turn it off.
   */
  istio?: boolean;
}

/** A duration string: "10s", "1.5s", "300ms", "1h30m". The string is kept as written. */
export function duration(opts: DurationOptions = {}): Schema<string> {
  const istio = opts.istio ?? true;
  return {
    expected: 'a duration such as "10s", "1.5s" or "300ms"',
    check(node, site, ctx) {
      if (!isScalar(node) || typeof node.value !== 'string') return typeError(ctx, site, this.expected, node);
      const nanos = parseDurationNanos(node.value);
      if (nanos === undefined) return invalid(ctx, site, `invalid duration ${JSON.stringify(node.value)}: use a number with a unit, e.g. "10s", "1.5s", "300ms", "1h"`);
      if (istio) {
        const problem = checkIstioDuration(nanos);
        if (problem) return invalid(ctx, site, problem);
      } else if (nanos < 0n) {
        return invalid(ctx, site, 'must not be negative');
      }
      return node.value;
    },
  };
}

/** Kubernetes IntOrString (a Service's targetPort): a number, or the name of a container port. */
export function intOrString(number: Schema<number>, name: Schema<string>): Schema<number | string> {
  return {
    expected: 'an integer or a string',
    check(node, site, ctx) {
      if (isScalar(node) && typeof node.value === 'number') return number.check(node, site, ctx);
      if (isScalar(node) && typeof node.value === 'string') return name.check(node, site, ctx);
      return typeError(ctx, site, this.expected, node);
    },
  };
}

/** Anything at all, kept as plain data: for parts of resources Weft does not look into. */
export function anyValue(): Schema<unknown> {
  return {
    expected: 'a value',
    check(node, _site, ctx) {
      return node.toJS(ctx.doc);
    },
  };
}

/** Any map, kept as plain data. */
export function anyMap(): Schema<Record<string, unknown>> {
  return {
    expected: 'a map',
    check(node, site, ctx) {
      if (!isMap(node)) return typeError(ctx, site, this.expected, node);
      return node.toJS(ctx.doc) as Record<string, unknown>;
    },
  };
}

// ---- collections -----------------------------------------------------------------------------

export interface ListOptions {
  minItems?: number;
  maxItems?: number;
}

/** A list; an item that fails its check leaves an `undefined` hole so indexes stay true. */
export function listOf<T>(item: Schema<T>, opts: ListOptions = {}): Schema<Array<T | undefined>> {
  return {
    expected: 'a list',
    check(node, site, ctx) {
      if (!isSeq(node)) return typeError(ctx, site, this.expected, node);
      if (opts.minItems !== undefined && node.items.length < opts.minItems) {
        invalid(ctx, site, opts.minItems === 1 ? 'must have at least one item' : `must have at least ${opts.minItems} items`);
      }
      if (opts.maxItems !== undefined && node.items.length > opts.maxItems) {
        invalid(ctx, site, `must have at most ${opts.maxItems} items`);
      }
      return node.items.map((raw, index) => {
        const child = resolveNode(raw, ctx.doc);
        const childSite = { path: joinPath(site.path, index), offset: startOf(raw) ?? site.offset };
        if (child === null) return typeError(ctx, childSite, item.expected, raw as Node);
        return item.check(child, childSite, ctx);
      });
    },
  };
}

export interface MapOptions {
  /** A rule for each key (label key syntax, port numbers as keys...). */
  key?: ValueRule<string>;
  minProperties?: number;
}

/** A map from string keys to values of one schema (labels, headers, portLevelMtls...). */
export function mapOf<T>(value: Schema<T>, opts: MapOptions = {}): Schema<Record<string, T>> {
  return {
    expected: 'a map',
    check(node, site, ctx) {
      if (!isMap(node)) return typeError(ctx, site, this.expected, node);
      if (opts.minProperties !== undefined && node.items.length < opts.minProperties) {
        invalid(ctx, site, opts.minProperties === 1 ? 'must have at least one entry' : `must have at least ${opts.minProperties} entries`);
      }
      const entries: Array<[string, T]> = [];
      for (const pair of node.items) {
        const key = keyString(pair, ctx.doc);
        const keySite = { path: site.path, offset: startOf(pair.key) ?? site.offset };
        if (key === undefined) {
          report(ctx, 'error', Codes.INVALID_TYPE, keySite, 'map keys must be strings or numbers');
          continue;
        }
        const childSite = { path: joinPath(site.path, key), offset: entryOffset(pair, ctx.doc) ?? site.offset };
        const keyProblem = opts.key?.(key);
        if (keyProblem) {
          invalid(ctx, { path: childSite.path, offset: keySite.offset }, keyProblem);
          continue;
        }
        const child = resolveNode(pair.value, ctx.doc);
        const checked = child === null ? typeError(ctx, childSite, value.expected, pair.value as Node) : value.check(child, childSite, ctx);
        if (checked !== undefined) entries.push([key, checked]);
      }
      // fromEntries defines own properties, so a key such as "__proto__" stays an ordinary key.
      return Object.fromEntries(entries);
    },
  };
}

export interface ObjectOptions {
  required?: readonly string[];
  /** Groups of fields of which at most one may be set (protobuf `oneof`). */
  oneOf?: ReadonlyArray<readonly string[]>;
  /** Deprecated fields and what to use instead; they are accepted with a warning. */
  deprecated?: Readonly<Record<string, string>>;
}

export type Fields = Readonly<Record<string, Schema>>;

/**
 * An object with known fields. Unknown fields are errors (with a suggestion when one is close),
 * `null` means "not set" as in protobuf JSON, and the result uses canonical (camelCase) names.
 */
export function obj(fields: Fields, opts: ObjectOptions = {}): Schema<Record<string, unknown>> {
  const known = Object.keys(fields);
  return {
    expected: 'a map',
    check(node, site, ctx) {
      if (!isMap(node)) return typeError(ctx, site, this.expected, node);
      const entries: Array<[string, unknown]> = [];
      const present = new Map<string, { written: string; pair: Pair }>();
      for (const pair of node.items) {
        const written = keyString(pair, ctx.doc);
        const keyOffset = startOf(pair.key) ?? site.offset;
        if (written === undefined) {
          report(ctx, 'error', Codes.INVALID_TYPE, { path: site.path, offset: keyOffset }, 'field names must be strings');
          continue;
        }
        let name = written;
        if (!Object.hasOwn(fields, name) && ctx.protoNames && Object.hasOwn(fields, snakeToCamel(name))) name = snakeToCamel(name);
        if (!Object.hasOwn(fields, name)) {
          const hint = suggest(written, known);
          report(ctx, 'error', Codes.UNKNOWN_FIELD, { path: joinPath(site.path, written), offset: keyOffset },
            `unknown field ${JSON.stringify(written)}${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''}`);
          continue;
        }
        const childPath = joinPath(site.path, name);
        const earlier = present.get(name);
        if (earlier) {
          report(ctx, 'error', Codes.CONFLICT, { path: childPath, offset: keyOffset },
            `${JSON.stringify(written)} and ${JSON.stringify(earlier.written)} are the same field; set it once`);
          continue;
        }
        const value = resolveNode(pair.value, ctx.doc);
        if (isNullNode(value)) continue; // protobuf JSON: null leaves the field unset
        present.set(name, { written, pair });
        const childSite = { path: childPath, offset: entryOffset(pair, ctx.doc) ?? keyOffset };
        const deprecation = opts.deprecated?.[name];
        if (deprecation) report(ctx, 'warning', Codes.DEPRECATED, childSite, `deprecated: ${deprecation}`);
        const checked = fields[name]!.check(value!, childSite, ctx);
        if (checked !== undefined) entries.push([name, checked]);
      }
      for (const name of opts.required ?? []) {
        if (!present.has(name)) {
          report(ctx, 'error', Codes.REQUIRED, { path: joinPath(site.path, name), offset: site.offset }, `required field ${JSON.stringify(name)} is missing`);
        }
      }
      for (const group of opts.oneOf ?? []) {
        // In document order, so the field written second is the one reported.
        const set = [...present.keys()].filter((f) => group.includes(f));
        if (set.length > 1) {
          const second = present.get(set[1]!)!;
          report(ctx, 'error', Codes.CONFLICT, { path: joinPath(site.path, set[1]!), offset: startOf(second.pair.key) ?? site.offset },
            `only one of ${group.map((f) => JSON.stringify(f)).join(', ')} may be set, found ${set.map((f) => JSON.stringify(f)).join(' and ')}`);
        }
      }
      return Object.fromEntries(entries);
    },
  };
}

/** Checks a whole document node (or sub-node) against a schema from the root path. */
export function checkRoot<T>(schema: Schema<T>, node: Node, path: string, ctx: CheckContext): T | undefined {
  return schema.check(node, { path, offset: startOf(node) ?? 0 }, ctx);
}

// ---- suggestions -----------------------------------------------------------------------------

/** The known name closest to a misspelt one, if it is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = candidate.toLowerCase() === lower ? 0 : editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = name.length <= 4 ? 1 : name.length <= 10 ? 2 : 3;
  return bestDistance <= allowed ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_v, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}
