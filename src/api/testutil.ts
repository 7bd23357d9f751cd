// Helpers for the api/ tests: inline YAML documents, and picking diagnostics out of a result.
import type { Diagnostic, LoadResult } from './types.ts';
import { parseText } from './parse.ts';

/** The shared corpus, resolved from the repository root (`../shared/corpus` beside the repo). */
export const CORPUS = new URL('../../../shared/corpus/', import.meta.url);

/** Template tag for YAML written indented in test code: removes the common indentation. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const lines = raw.replace(/^\n/, '').replace(/\n[ \t]*$/, '\n').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

export function load(text: string, file = 'test.yaml'): LoadResult {
  return parseText(text, file);
}

export function errors(result: LoadResult | Diagnostic[]): Diagnostic[] {
  const list = Array.isArray(result) ? result : result.diagnostics;
  return list.filter((d) => d.severity === 'error');
}

export function warnings(result: LoadResult | Diagnostic[]): Diagnostic[] {
  const list = Array.isArray(result) ? result : result.diagnostics;
  return list.filter((d) => d.severity === 'warning');
}

/** `CODE path` for each error: compact to assert on. */
export function errorKeys(result: LoadResult | Diagnostic[]): string[] {
  return errors(result).map((d) => `${d.code} ${d.path}`);
}

/** A VirtualService document with the given spec body (YAML, indented under `spec:`). */
export function virtualService(specBody: string, name = 'vs'): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ${name}\nspec:\n${indent(specBody, 2)}`;
}

export function destinationRule(specBody: string, name = 'dr'): string {
  return `apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: ${name}\nspec:\n${indent(specBody, 2)}`;
}

function indent(text: string, n: number): string {
  return yaml`${text}`
    .split('\n')
    .map((l) => (l === '' ? l : ' '.repeat(n) + l))
    .join('\n');
}
