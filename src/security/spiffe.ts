// SPIFFE workload identities as Istio writes them: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

export const DEFAULT_TRUST_DOMAIN = 'cluster.local';
export const SPIFFE_PREFIX = 'spiffe://';

export interface WorkloadIdentity {
  trustDomain: string;
  namespace: string;
  serviceAccount: string;
}

// Trust domains are DNS-like names (SPIFFE allows a-z 0-9 . - _); namespaces are DNS-1123 labels;
// service accounts are DNS-1123 subdomains. Anything else is refused, so a principal string can
// never smuggle an extra `/ns/` or `/sa/` segment past the authorization matchers.
const TRUST_DOMAIN = /^[a-z0-9](?:[-a-z0-9._]*[a-z0-9])?$/;
const NAMESPACE = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const SERVICE_ACCOUNT = /^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$/;

/** What is wrong with an identity's parts, or undefined when they are well formed. */
export function identityProblem(id: WorkloadIdentity): string | undefined {
  if (typeof id?.trustDomain !== 'string' || typeof id.namespace !== 'string' || typeof id.serviceAccount !== 'string') return 'identity parts must be strings';
  if (id.trustDomain.length > 255 || !TRUST_DOMAIN.test(id.trustDomain)) return `invalid trust domain ${JSON.stringify(id.trustDomain)}`;
  if (id.namespace.length > 63 || !NAMESPACE.test(id.namespace)) return `invalid namespace ${JSON.stringify(id.namespace)}`;
  if (id.serviceAccount.length > 253 || !SERVICE_ACCOUNT.test(id.serviceAccount)) return `invalid service account ${JSON.stringify(id.serviceAccount)}`;
  return undefined;
}

/** The SPIFFE URI of an identity; throws on parts that are not valid names. */
export function spiffeId(id: WorkloadIdentity): string {
  const problem = identityProblem(id);
  if (problem) throw new Error(problem);
  return `${SPIFFE_PREFIX}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** The parts of a canonical Istio SPIFFE ID, or undefined for anything else. */
export function parseSpiffeId(uri: string): WorkloadIdentity | undefined {
  if (!uri.startsWith(SPIFFE_PREFIX)) return undefined;
  const parts = uri.slice(SPIFFE_PREFIX.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'ns' || parts[3] !== 'sa') return undefined;
  const id = { trustDomain: parts[0]!, namespace: parts[2]!, serviceAccount: parts[4]! };
  return identityProblem(id) ? undefined : id;
}
