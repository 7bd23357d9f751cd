// `weft explain`'s security part: for each workload the request could reach, whether its sidecar
// takes the connection (PeerAuthentication) and which AuthorizationPolicy allows or denies the call.
//
// It runs the code the proxies run: translate's selection of PeerAuthentication and policies for
// the workload, the proxy's path normalisation and compileAuthz, evaluated with the caller's
// principal (its workload's SPIFFE ID, or --principal), the workload's port, host, method, path and
// headers.
import type { Resource, WorkloadSpec } from '../api/types.ts';
import { compileAuthz, type AuthzPolicy } from '../security/authz.ts';
import { normalizePath } from '../security/path.ts';
import { parseSpiffeId, SPIFFE_PREFIX } from '../security/spiffe.ts';
import { inboundAuthorization, inboundMtls } from '../translate/security.ts';
import type { ClusterConfig, MtlsMode, ProxyNode } from '../wire/snapshot.ts';

export interface SecurityRequest {
  method: string;
  authority: string;
  path: string;
  query: string;
  headers: Record<string, string>;
}

export interface SecurityReport {
  workload: string;
  namespace: string;
  /** PeerAuthentication for the workload's port, and the policy that set it. */
  mtls: { mode: MtlsMode; policy: string | null; port: number };
  /** How the caller's sidecar connects: mTLS unless the DestinationRule says DISABLE (or the endpoint has no sidecar). */
  connection: 'mutual_tls' | 'plaintext';
  /** The principal the server's sidecar sees: the caller's SPIFFE ID over mTLS, none over plaintext. */
  principal: string | null;
  /** refused: the connection is not accepted; badRequest: the path is refused (400); then allowed / denied. */
  verdict: 'allowed' | 'denied' | 'refused' | 'badRequest';
  policy: string | null;
  rule: number | null;
  reason: string;
  /** Policies that apply to the workload, with their action (and dry-run ones). */
  policies: Array<{ policy: string; action: string; dryRun: boolean }>;
}

/** `spiffe://td/ns/x/sa/y`, from that or Istio's principal form `td/ns/x/sa/y`; `none` means a caller without one. */
export function principalArgument(text: string): string | undefined {
  if (text === 'none') return '';
  const uri = text.startsWith(SPIFFE_PREFIX) ? text : `${SPIFFE_PREFIX}${text}`;
  return parseSpiffeId(uri) ? uri : undefined;
}

/** One report per workload behind the destinations' endpoints (each workload once). */
export function securityReports(
  request: SecurityRequest,
  principal: string,
  clusters: readonly ClusterConfig[],
  resources: readonly Resource[],
  workloadNode: (w: Resource<WorkloadSpec>) => ProxyNode,
): SecurityReport[] {
  const workloads = resources.filter((r): r is Resource<WorkloadSpec> => r.kind === 'Workload');
  const seen = new Set<string>();
  const out: SecurityReport[] = [];
  for (const c of clusters) {
    for (const e of c.endpoints) {
      const key = `${e.namespace}/${e.workload}`;
      if (!e.sidecar || seen.has(key)) continue;
      seen.add(key);
      const w = workloads.find((x) => x.metadata.namespace === e.namespace && x.metadata.name === e.workload);
      if (!w) continue;
      const node = workloadNode(w);
      // The workload port: where the app listens (portLevelMtls and `ports` name it).
      const port = w.spec.port ?? c.service.port;
      const mtls = inboundMtls(resources, node, port);
      const mode = c.tls?.mode;
      const connection = mode === 'DISABLE' ? 'plaintext' : 'mutual_tls';
      const seenPrincipal = connection === 'mutual_tls' ? principal : '';
      const policies = (inboundAuthorization(resources, node).authorization ?? []) as unknown as AuthzPolicy[];
      const authz = compileAuthz(policies, { namespace: node.namespace, labels: node.labels });
      const base = {
        workload: e.workload,
        namespace: e.namespace,
        mtls: { mode: mtls.mode, policy: mtls.policy ?? null, port },
        connection,
        principal: seenPrincipal || null,
        policies: authz.policies.map((p) => ({ ...p })),
      } as const;
      if (connection === 'plaintext' && mtls.mode === 'STRICT') {
        out.push({ ...base, verdict: 'refused', policy: null, rule: null, reason: `the DestinationRule sends plaintext (tls DISABLE) and PeerAuthentication is STRICT: the connection is reset` });
        continue;
      }
      if (connection === 'mutual_tls' && mtls.mode === 'DISABLE') {
        out.push({ ...base, verdict: 'refused', policy: null, rule: null, reason: 'PeerAuthentication is DISABLE and the caller speaks mTLS: the connection is reset (set the DestinationRule tls mode to DISABLE)' });
        continue;
      }
      if (connection === 'mutual_tls' && !principal) {
        out.push({ ...base, verdict: 'refused', policy: null, rule: null, reason: 'the caller has no certificate: an mTLS handshake needs one' });
        continue;
      }
      const normalized = normalizePath(request.query ? `${request.path}?${request.query}` : request.path);
      if (!normalized.ok) {
        out.push({ ...base, verdict: 'badRequest', policy: null, rule: null, reason: `400 before authorization: ${normalized.reason}` });
        continue;
      }
      const d = authz.evaluate({
        principal: seenPrincipal,
        sourceIp: '127.0.0.1',
        port,
        http: { host: request.authority, method: request.method, path: normalized.path, headers: request.headers },
      });
      out.push({
        ...base,
        verdict: d.allowed ? 'allowed' : 'denied',
        policy: d.policy ?? null,
        rule: d.rule ?? null,
        reason: d.allowed ? d.reason : `${d.reason} → 403 RBAC: access denied`,
      });
    }
  }
  return out;
}

export function renderSecurity(reports: readonly SecurityReport[], callerPrincipal: string): string[] {
  if (reports.length === 0) return [];
  const out = ['', `Security  (caller's principal: ${callerPrincipal || 'none'})`];
  const mark = { allowed: '✔', denied: '✘', refused: '✘', badRequest: '✘' } as const;
  for (const r of reports) {
    out.push(`  ${r.namespace}/${r.workload}  mTLS ${r.mtls.mode}${r.mtls.policy ? ` (${r.mtls.policy})` : ' (default)'} on port ${r.mtls.port}, connection ${r.connection}`);
    out.push(`    ${mark[r.verdict]} ${r.reason}`);
    if (r.policies.length > 0) out.push(`    policies: ${r.policies.map((p) => `${p.action}${p.dryRun ? ' (dry run)' : ''} ${p.policy}`).join(', ')}`);
  }
  return out;
}
