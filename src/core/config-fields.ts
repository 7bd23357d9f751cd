// Reading Istio's YAML fields into wire configs: small checked accessors that throw one clear error (a NACK).

import { checkIstioDuration, parseDurationNanos } from './duration.ts';

/**
 * The fields of an Istio message as the api layer hands them over (camelCase, durations as
 * strings). `what` names the message in errors (`outlierDetection`); fields outside `known` are
 * rejected, so a misspelt or unsupported field is never silently ignored.
 */
export function fieldsOf(value: unknown, what: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new Error(`${what}: expected a map, got ${describe(value)}`);
  const fields = value as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!known.includes(name)) throw new Error(`${what}: unknown field "${name}" (known: ${known.join(', ')})`);
  }
  return fields;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  return typeof value === 'string' ? `the string ${JSON.stringify(value)}` : `${typeof value} ${JSON.stringify(value)}`;
}

/** An integer in [min, max], or undefined when the field is absent. */
export function optInt(fields: Record<string, unknown>, what: string, name: string, min: number, max: number): number | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`${what}.${name}: expected an integer, got ${describe(v)}`);
  if (v < min || v > max) throw new Error(`${what}.${name}: ${v} is not in range ${min}..${max}`);
  return v;
}

/** A number in [min, max], or undefined when the field is absent. */
export function optNumber(fields: Record<string, unknown>, what: string, name: string, min: number, max: number): number | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}.${name}: expected a number, got ${describe(v)}`);
  if (v < min || v > max) throw new Error(`${what}.${name}: ${v} is not in range ${min}..${max}`);
  return v;
}

export function optBool(fields: Record<string, unknown>, what: string, name: string): boolean | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new Error(`${what}.${name}: expected true or false, got ${describe(v)}`);
  return v;
}

export interface DurationRule {
  /**
   * Apply Istio's usual rule: at least 1ms, whole milliseconds. Off for the few fields where
   * `0s` means something (a TCP idle timeout of 0s turns it off).
   */
  istio: boolean;
}

/** A duration string ("10s", "1.5s", "300ms") in milliseconds, or undefined when absent. */
export function optDurationMs(fields: Record<string, unknown>, what: string, name: string, rule: DurationRule = { istio: true }): number | undefined {
  const v = fields[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new Error(`${what}.${name}: expected a duration such as "10s", got ${describe(v)}`);
  const nanos = parseDurationNanos(v);
  if (nanos === undefined) throw new Error(`${what}.${name}: invalid duration ${JSON.stringify(v)}`);
  if (rule.istio) {
    const problem = checkIstioDuration(nanos);
    if (problem) throw new Error(`${what}.${name}: ${problem}`);
  } else if (nanos < 0n) {
    throw new Error(`${what}.${name}: must not be negative`);
  }
  return Number(nanos / 1_000_000n);
}

/** Throws unless `value` is an integer in [min, max]; for checking wire configs when compiled. */
export function checkInt(what: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${what} must be an integer in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
}

/** Throws unless `value` is a finite number in [min, max]. */
export function checkNumber(what: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${what} must be a number in ${min}..${max}, got ${JSON.stringify(value)}`);
  }
}

/** Istio's "unset" for int32/uint32 limits: 2^32−1, effectively no limit. */
export const UNLIMITED = 4294967295;
