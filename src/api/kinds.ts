// The registry of kinds: which apiVersion/kind pairs Weft reads, and which Kubernetes kinds it knowingly skips.
import { apiVersionOf, type KindDef } from './kind.ts';
import { anyMap } from './schema.ts';
import { virtualService } from './virtualservice.ts';
import { destinationRule } from './destinationrule.ts';
import { serviceEntry } from './serviceentry.ts';
import { workloadEntry } from './workloadentry.ts';
import { gateway } from './gateway.ts';
import { peerAuthentication } from './peerauthentication.ts';
import { authorizationPolicy } from './authorizationpolicy.ts';
import { service } from './service.ts';
import { workload } from './workload.ts';
import { fallbackPolicy } from './fallbackpolicy.ts';

/** A kind Weft recognises but does not look into: its spec only has to be a map. */
function opaque(group: string, kind: string, versions: string[], origin: string): KindDef {
  return { group, kind, versions, origin, protoNames: true, spec: anyMap() };
}

export const KINDS: readonly KindDef[] = [
  virtualService,
  destinationRule,
  serviceEntry,
  workloadEntry,
  gateway,
  peerAuthentication,
  authorizationPolicy,
  service,
  workload,
  fallbackPolicy,
  opaque('networking.istio.io', 'Sidecar', ['v1', 'v1beta1', 'v1alpha3'], 'Istio'),
  opaque('networking.istio.io', 'EnvoyFilter', ['v1alpha3'], 'Istio'),
  opaque('networking.istio.io', 'WorkloadGroup', ['v1', 'v1beta1', 'v1alpha3'], 'Istio'),
  opaque('networking.istio.io', 'ProxyConfig', ['v1beta1'], 'Istio'),
  opaque('extensions.istio.io', 'WasmPlugin', ['v1alpha1'], 'Istio'),
  opaque('telemetry.istio.io', 'Telemetry', ['v1', 'v1alpha1'], 'Istio'),
  opaque('security.istio.io', 'RequestAuthentication', ['v1', 'v1beta1'], 'Istio'),
  opaque('flagger.app', 'Canary', ['v1beta1'], 'Flagger'),
];

// Kubernetes API groups whose kinds (Deployment, ConfigMap, Ingress...) commonly sit next to
// mesh configuration. Weft runs processes from `Workload`s instead, so these are skipped with a
// warning rather than failing the whole load.
const KUBERNETES_GROUPS = new Set([
  '', 'apps', 'batch', 'autoscaling', 'policy', 'rbac.authorization.k8s.io', 'networking.k8s.io', 'storage.k8s.io',
  'apiextensions.k8s.io', 'admissionregistration.k8s.io', 'scheduling.k8s.io', 'coordination.k8s.io',
  'discovery.k8s.io', 'certificates.k8s.io', 'node.k8s.io',
]);

export type KindLookup =
  | { found: KindDef }
  | { ignored: string }
  | { unknown: string };

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** Every accepted apiVersion/kind, for the UNKNOWN_KIND message. */
export function acceptedKinds(): string {
  return KINDS.map((k) => `${k.kind} (${k.versions.map((v) => apiVersionOf(k, v)).join(', ')})`).join('; ');
}

export function lookupKind(apiVersion: string, kind: string): KindLookup {
  const { group, version } = splitApiVersion(apiVersion);
  const def = KINDS.find((k) => k.group === group && k.kind === kind);
  if (def) {
    if (def.versions.includes(version)) return { found: def };
    return { unknown: `${apiVersion} ${kind} is not a version Weft accepts; use ${def.versions.map((v) => apiVersionOf(def, v)).join(', ')}` };
  }
  const sameKind = KINDS.filter((k) => k.kind === kind);
  if (sameKind.length > 0) {
    return { unknown: `unknown kind ${apiVersion} ${kind}; did you mean apiVersion ${sameKind.map((k) => apiVersionOf(k, k.versions[0]!)).join(' or ')}?` };
  }
  if (kind === 'List') return { unknown: `${apiVersion} List is not supported: write each item as its own YAML document (separated by ---)` };
  if (KUBERNETES_GROUPS.has(group)) {
    return { ignored: `Kubernetes ${apiVersion} ${kind} is not used by Weft (Weft runs processes declared as weft.dev/v1alpha1 Workload); it will be ignored` };
  }
  return { unknown: `unknown kind ${apiVersion} ${kind}; Weft accepts ${acceptedKinds()}` };
}
