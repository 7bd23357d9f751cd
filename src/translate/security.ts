// Security for one sidecar's inbound side: the PeerAuthentication mode for its workload port and the
// AuthorizationPolicies that apply to its workload, as Istio selects them. Pure.
import type { Resource } from '../api/types.ts';
import { selectAuthzPolicies, type AuthorizationPolicySpec, type AuthzPolicy } from '../security/authz.ts';
import { mtlsModeForPort, resolvePeerAuthentication, type PeerAuthenticationSpec, type PeerAuthnPolicy } from '../security/peer-authn.ts';
import type { AuthorizationPolicyConfig, InboundMtlsConfig, ProxyNode } from '../wire/snapshot.ts';

const DRY_RUN = 'istio.io/dry-run';

/** PeerAuthentication resources as the resolver takes them. */
export function peerAuthnPolicies(resources: readonly Resource[]): PeerAuthnPolicy[] {
  return resources
    .filter((r) => r.kind === 'PeerAuthentication')
    .map((r) => ({ namespace: r.metadata.namespace, name: r.metadata.name, spec: r.spec as PeerAuthenticationSpec }));
}

/** AuthorizationPolicy resources as plain data (what travels in a snapshot). */
export function authzPolicies(resources: readonly Resource[]): AuthzPolicy[] {
  return resources
    .filter((r) => r.kind === 'AuthorizationPolicy')
    .map((r) => ({
      namespace: r.metadata.namespace,
      name: r.metadata.name,
      spec: r.spec as AuthorizationPolicySpec,
      ...(r.metadata.annotations?.[DRY_RUN] === 'true' ? { dryRun: true } : {}),
    }));
}

/** The mTLS mode for the workload's port (`appPort`, the port portLevelMtls names), and which policy set it. */
export function inboundMtls(resources: readonly Resource[], proxy: ProxyNode, appPort: number): InboundMtlsConfig {
  const resolved = resolvePeerAuthentication(peerAuthnPolicies(resources), { namespace: proxy.namespace, labels: proxy.labels });
  const mode = mtlsModeForPort(resolved, appPort);
  const policy = resolved.workload ?? resolved.namespace ?? resolved.mesh;
  return policy ? { mode, policy } : { mode };
}

/** The AuthorizationPolicies that apply to the proxy's workload, in file order (absent when none does). */
export function inboundAuthorization(resources: readonly Resource[], proxy: ProxyNode): { authorization?: AuthorizationPolicyConfig[] } {
  const { applied } = selectAuthzPolicies(authzPolicies(resources), { namespace: proxy.namespace, labels: proxy.labels });
  if (applied.length === 0) return {};
  return { authorization: applied.map((p) => ({ namespace: p.namespace, name: p.name, spec: p.spec as Record<string, unknown>, ...(p.dryRun ? { dryRun: true } : {}) })) };
}

/**
 * Auto mTLS as Istio infers it: a client sends plaintext to a sidecar whose PeerAuthentication
 * (workload-wide; port-level settings are not known to the caller) is DISABLE. Built once per
 * translation; asked per endpoint.
 */
export function peerMtlsDisabled(resources: readonly Resource[]): (namespace: string, labels: Readonly<Record<string, string>>) => boolean {
  const policies = peerAuthnPolicies(resources);
  if (policies.length === 0) return () => false;
  return (namespace, labels) => resolvePeerAuthentication(policies, { namespace, labels }).mode === 'DISABLE';
}
