// PeerAuthentication resolution: the mTLS mode a workload's inbound side enforces, per port.
//
// As Istio composes it (istio/istio pilot/pkg/security/authn ComposePeerAuthentication and
// pilot/pkg/model/authentication.go):
//
// - Levels: mesh (a policy in the root namespace with no selector), namespace (a policy in the
//   workload's namespace with no selector) and workload (a policy in the workload's namespace whose
//   `selector.matchLabels` are all among the workload's labels). An empty `matchLabels` counts as no
//   selector. A policy with a selector in the root namespace is ignored (Istio does the same).
// - The narrowest level that sets a mode wins: workload > namespace > mesh; PERMISSIVE when none does.
//   `UNSET` (or no `mtls`) inherits from the level above.
// - `portLevelMtls` (workload-level policies only) overrides the mode for that workload port; an
//   UNSET port mode inherits the workload's resolved mode.
// - Two policies at one level: Istio keeps the oldest (creation time). Weft has no creation time and
//   keeps the first in the order given (file order), reporting the others as ignored.
import { DEFAULT_ROOT_NAMESPACE } from './authz.ts';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';
type SpecMode = MtlsMode | 'UNSET';

export interface PeerAuthenticationSpec {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: SpecMode };
  /** Keys are workload port numbers (strings in YAML). */
  portLevelMtls?: Record<string, { mode?: SpecMode } | undefined>;
}

export interface PeerAuthnPolicy {
  namespace: string;
  name: string;
  spec: PeerAuthenticationSpec;
}

export interface PeerAuthnWorkload {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

export interface ResolvedPeerAuthn {
  /** The workload-wide mode. */
  mode: MtlsMode;
  /** Port-level overrides, already resolved (no UNSET). */
  ports: Readonly<Record<number, MtlsMode>>;
  /** The policy chosen at each level (`namespace/name`), for `weft explain`. */
  mesh?: string;
  namespace?: string;
  workload?: string;
  /** Policies that matched a level already taken, or cannot apply. */
  ignored: ReadonlyArray<{ policy: string; reason: string }>;
}

const ref = (p: PeerAuthnPolicy) => `${p.namespace}/${p.name}`;
const setMode = (mode: SpecMode | undefined): MtlsMode | undefined => (mode === undefined || mode === 'UNSET' ? undefined : mode);

/** Resolves the mTLS settings for one workload. */
export function resolvePeerAuthentication(
  policies: readonly PeerAuthnPolicy[],
  workload: PeerAuthnWorkload,
  options: { rootNamespace?: string } = {},
): ResolvedPeerAuthn {
  const root = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  let mesh: PeerAuthnPolicy | undefined;
  let namespace: PeerAuthnPolicy | undefined;
  let workloadLevel: PeerAuthnPolicy | undefined;
  const ignored: Array<{ policy: string; reason: string }> = [];

  for (const p of policies) {
    if (p.namespace !== workload.namespace && p.namespace !== root) continue;
    const labels = p.spec.selector?.matchLabels ?? {};
    const selects = Object.keys(labels).length > 0;
    if (!selects) {
      const isMesh = p.namespace === root;
      const taken = isMesh ? mesh : namespace;
      if (taken) {
        ignored.push({ policy: ref(p), reason: `${isMesh ? 'mesh' : 'namespace'}-level policy ${ref(taken)} comes first` });
      } else if (isMesh) mesh = p;
      else namespace = p;
      continue;
    }
    if (!Object.entries(labels).every(([k, v]) => workload.labels[k] === v)) continue;
    if (p.namespace === root) {
      ignored.push({ policy: ref(p), reason: 'a policy with a selector in the root namespace is ignored' });
    } else if (workloadLevel) {
      ignored.push({ policy: ref(p), reason: `workload-level policy ${ref(workloadLevel)} comes first` });
    } else {
      workloadLevel = p;
    }
  }

  let mode: MtlsMode = 'PERMISSIVE';
  for (const level of [mesh, namespace, workloadLevel]) mode = setMode(level?.spec.mtls?.mode) ?? mode;

  const ports: Record<number, MtlsMode> = {};
  for (const [key, value] of Object.entries(workloadLevel?.spec.portLevelMtls ?? {})) {
    const port = Number(key);
    if (!/^\d+$/.test(key) || port < 1 || port > 65535) throw new Error(`PeerAuthentication ${ref(workloadLevel!)}: portLevelMtls key ${JSON.stringify(key)} is not a port`);
    ports[port] = setMode(value?.mode) ?? mode;
  }

  return Object.freeze({
    mode,
    ports: Object.freeze(ports),
    ...(mesh && { mesh: ref(mesh) }),
    ...(namespace && { namespace: ref(namespace) }),
    ...(workloadLevel && { workload: ref(workloadLevel) }),
    ignored: Object.freeze(ignored),
  });
}

/** The mode for a connection to `port` of the workload. */
export function mtlsModeForPort(resolved: ResolvedPeerAuthn, port: number): MtlsMode {
  return resolved.ports[port] ?? resolved.mode;
}
