// What Weft knows about one kind of resource: its schema, Istio's rules for it, and its defaults.
import type { Schema, ValueRule } from './schema.ts';
import type { RuleContext } from './rules.ts';

// `any` by default: the registry holds kinds with different spec types side by side.
export interface KindDef<S = any> {
  /** API group: `networking.istio.io`; '' for the Kubernetes core group (`apiVersion: v1`). */
  readonly group: string;
  readonly kind: string;
  /** Accepted versions, newest first (used in messages). */
  readonly versions: readonly string[];
  /** Whose configuration this is, for messages: "Istio", "Kubernetes", "Flagger", "Weft". */
  readonly origin: string;
  /** Read with protobuf's JSON mapping: snake_case field names are accepted too. */
  readonly protoNames: boolean;
  readonly spec: Schema<Record<string, unknown>>;
  /** The document must have a `spec` (Istio's CRD requires it for some kinds). */
  readonly specRequired?: boolean;
  /** metadata.name rule; the default is a Kubernetes DNS-1123 subdomain. */
  readonly nameRule?: ValueRule<string>;
  /** Semantic rules run on the schema-checked spec (Istio's webhook validation). */
  rules?(spec: S, ctx: RuleContext): void;
  /** Fills defaults once the spec is known to be valid. */
  finish?(spec: S, ctx: RuleContext): S;
}

export function apiVersionOf(def: KindDef, version: string): string {
  return def.group === '' ? version : `${def.group}/${version}`;
}
