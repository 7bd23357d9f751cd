// Diagnostic codes, construction, ordering and the one-line `file:line:col: severity CODE: message` format.
import type { Diagnostic, Severity, SourcePos } from './types.ts';

/**
 * Every code the api/ layer emits. Codes are stable: tools and tests key on them, so add new ones
 * rather than changing the meaning of an existing one.
 */
export const Codes = {
  /** A path given to `loadPaths` does not exist. */
  FILE_NOT_FOUND: 'FILE_NOT_FOUND',
  /** A file could not be read (permissions, not a regular file...). */
  FILE_UNREADABLE: 'FILE_UNREADABLE',
  /** The YAML itself is malformed; the document is skipped, the others in the file still load. */
  YAML_SYNTAX: 'YAML_SYNTAX',
  /** apiVersion/kind is not one Weft recognises. */
  UNKNOWN_KIND: 'UNKNOWN_KIND',
  /** A well-known Kubernetes kind (Deployment, ConfigMap...) that Weft has no use for. */
  IGNORED_KIND: 'IGNORED_KIND',
  /** A field the schema does not define (often a typo or a field from another version). */
  UNKNOWN_FIELD: 'UNKNOWN_FIELD',
  /** Wrong YAML type: a string where a number belongs, a map where a list belongs... */
  INVALID_TYPE: 'INVALID_TYPE',
  /** Right type, value out of range or not allowed by Istio's rules. */
  INVALID_VALUE: 'INVALID_VALUE',
  /** A required field is missing. */
  REQUIRED: 'REQUIRED',
  /** Fields that cannot be set together (route + redirect, simple + consistentHash...). */
  CONFLICT: 'CONFLICT',
  /** The same name used twice where names must be unique (subsets, ports, resources). */
  DUPLICATE: 'DUPLICATE',
  /** Valid Istio that Weft does not implement yet; it is ignored. */
  NOT_IMPLEMENTED: 'NOT_IMPLEMENTED',
  /** Valid Istio that Weft refuses because ignoring it would be unsafe (an AuthorizationPolicy's CUSTOM action). */
  NOT_SUPPORTED: 'NOT_SUPPORTED',
  /** A deprecated field; it still works in Istio. */
  DEPRECATED: 'DEPRECATED',
  /** Valid but very likely not what was meant (Istio reports these as warnings too). */
  SUSPICIOUS: 'SUSPICIOUS',
  /** An http route that can never be reached because an earlier route matches everything. */
  UNREACHABLE_ROUTE: 'UNREACHABLE_ROUTE',
  /** A route destination names a subset that no DestinationRule for that host defines. */
  UNKNOWN_SUBSET: 'UNKNOWN_SUBSET',
  /** A destination host that no Service, ServiceEntry or VirtualService in the mesh defines. */
  UNKNOWN_HOST: 'UNKNOWN_HOST',
  UNKNOWN_GATEWAY: 'UNKNOWN_GATEWAY',
  GATEWAY_NOT_SERVED: 'GATEWAY_NOT_SERVED',
  /** Two resources of the same kind share namespace and name. */
  DUPLICATE_NAME: 'DUPLICATE_NAME',
  /** Two DestinationRules for the same host; Istio merges them, which is rarely intended. */
  DUPLICATE_DESTINATION_RULE: 'DUPLICATE_DESTINATION_RULE',
  /** Two FallbackPolicies protect the same host and subset; only the first (file order) applies. */
  DUPLICATE_FALLBACK_POLICY: 'DUPLICATE_FALLBACK_POLICY',
} as const;

export type Code = (typeof Codes)[keyof typeof Codes];

/** Builds a diagnostic; the field path, when there is one, leads the message. */
export function makeDiagnostic(
  severity: Severity,
  code: string,
  path: string,
  text: string,
  pos: SourcePos,
): Diagnostic {
  return {
    file: pos.file,
    line: pos.line,
    col: pos.col,
    severity,
    code,
    path,
    message: path === '' ? text : `${path}: ${text}`,
  };
}

/** `src/x.yaml:12:9: error INVALID_VALUE: spec.http[0].route[1].weight: must be between 0 and 2147483647` */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity} ${d.code}: ${d.message}`;
}

/** Orders by file, then line, then column, then errors before warnings: the order a reader scans. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  if (a.line !== b.line) return a.line - b.line;
  if (a.col !== b.col) return a.col - b.col;
  if (a.severity !== b.severity) return a.severity === 'error' ? -1 : 1;
  return a.message < b.message ? -1 : a.message > b.message ? 1 : 0;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}
