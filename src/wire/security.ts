// The security part of a ProxySnapshot: what a sidecar's inbound side enforces (PeerAuthentication,
// resolved) and the AuthorizationPolicies that apply to its workload (as written; the proxy compiles them).

/** PeerAuthentication's mTLS modes, resolved (never UNSET). */
export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** The mTLS mode the inbound listener enforces for the workload's port. */
export interface InboundMtlsConfig {
  mode: MtlsMode;
  /** The PeerAuthentication that decided (`namespace/name`); absent = Istio's default, PERMISSIVE. */
  policy?: string;
}

/**
 * One AuthorizationPolicy as written (security.istio.io v1 fields: selector, action, rules…).
 * Plain data: the proxy compiles the list (src/security/authz.ts) and NACKs what it cannot enforce.
 */
export interface AuthorizationPolicyConfig {
  namespace: string;
  name: string;
  spec: Record<string, unknown>;
  /** The `istio.io/dry-run: "true"` annotation: evaluated and reported, never enforced. */
  dryRun?: boolean;
}

/** What the CA endpoint (`POST /v1/certificates`) answers a proxy: its chain and the trust bundle. */
export interface CertificateResponse {
  spiffeId: string;
  certChain: string;
  roots: string[];
  notBefore: string;
  notAfter: string;
  serial: string;
}
