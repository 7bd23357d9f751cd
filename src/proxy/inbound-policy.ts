// The inbound side's security tables, compiled from a snapshot beside the routing tables: the mTLS
// mode the listener enforces and the authorization decision for the workload. Anything the proxy
// cannot enforce (a CUSTOM policy, a malformed rule) throws here, so the snapshot is NACKed and the
// proxy keeps enforcing its last good policies — it never runs with a policy silently dropped.
import { compileAuthz, type AuthzPolicy, type CompiledAuthz } from '../security/authz.ts';
import type { MtlsMode, ProxySnapshot } from '../wire/snapshot.ts';

export interface InboundPolicy {
  /** PeerAuthentication for the workload's port: what the inbound listener accepts. */
  readonly mode: MtlsMode;
  /** The AuthorizationPolicies that apply, compiled; absent when none does (everything is allowed). */
  readonly authz?: CompiledAuthz;
  /** The workload port requests are for (AuthorizationPolicy `ports`): the app's port. */
  readonly port: number;
}

const MODES: readonly string[] = ['STRICT', 'PERMISSIVE', 'DISABLE'];

/** Undefined for a proxy without an inbound side (the edge). */
export function compileInboundPolicy(snapshot: ProxySnapshot): InboundPolicy | undefined {
  const inbound = snapshot.inbound;
  if (!inbound) return undefined;
  const mode = inbound.mtls?.mode ?? 'PERMISSIVE';
  if (!MODES.includes(mode)) throw new Error(`inbound: mTLS mode ${JSON.stringify(mode)} is not STRICT, PERMISSIVE or DISABLE`);
  const policies = inbound.authorization ?? [];
  if (!Array.isArray(policies)) throw new Error('inbound: authorization is not a list of policies');
  for (const p of policies) {
    if (typeof p?.namespace !== 'string' || typeof p.name !== 'string' || !p.spec || typeof p.spec !== 'object') {
      throw new Error(`inbound: malformed AuthorizationPolicy ${JSON.stringify(p)?.slice(0, 80)}`);
    }
  }
  const workload = { namespace: snapshot.proxy.namespace, labels: snapshot.proxy.labels ?? {} };
  let authz: CompiledAuthz | undefined;
  try {
    authz = policies.length > 0 ? compileAuthz(policies as unknown as AuthzPolicy[], workload) : undefined;
  } catch (err) {
    // AuthzConfigError names the policy; anything else is a shape compileAuthz did not expect.
    throw new Error((err as Error).message.startsWith('AuthorizationPolicy ') ? (err as Error).message : `AuthorizationPolicy: ${(err as Error).message}`);
  }
  return Object.freeze({ mode, authz, port: inbound.appPort });
}
