// Workload identity as Istio writes it: a SPIFFE ID in the cluster's trust domain.

export const TRUST_DOMAIN = 'cluster.local';

export function spiffe(namespace: string, serviceAccount: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;
}
