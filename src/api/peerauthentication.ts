// PeerAuthentication (security.istio.io v1, v1beta1): schema and Istio's rules; resolved per workload and
// port by src/security/peer-authn.ts and enforced by each sidecar's inbound listener.
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { enumOf, mapOf, obj, type Schema } from './schema.ts';
import { workloadSelector } from './common.ts';
import { checkSelectorLabels, type RuleContext } from './rules.ts';

const mode = enumOf(['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT']);

/** portLevelMtls keys are workload port numbers (a protobuf map<uint32, ...>). */
function checkPortKey(key: string): string | undefined {
  if (!/^\d+$/.test(key)) return `port ${JSON.stringify(key)} is not a number`;
  const n = Number(key);
  return n >= 1 && n <= 65535 ? undefined : `port must be between 1-65535, got ${key}`;
}

const spec: Schema<Record<string, unknown>> = obj({
  selector: workloadSelector(),
  mtls: obj({ mode }),
  portLevelMtls: mapOf(obj({ mode }), { key: checkPortKey, minProperties: 1 }),
});

interface PeerAuthenticationSpec {
  selector?: { matchLabels?: Record<string, string> };
  mtls?: { mode?: string };
  portLevelMtls?: Record<string, { mode?: string }>;
}

function rules(spec: PeerAuthenticationSpec, ctx: RuleContext): void {
  const labels = spec.selector?.matchLabels ?? {};
  // Ports only exist on a workload, so port-level settings need a selector that picks workloads.
  if (spec.portLevelMtls && Object.keys(spec.portLevelMtls).length > 0 && Object.keys(labels).length === 0) {
    ctx.error('spec.portLevelMtls', 'portLevelMtls requires a selector with matchLabels (a mesh- or namespace-wide policy cannot have port-level mTLS)', Codes.CONFLICT);
  }
  if (spec.selector) checkSelectorLabels(ctx, 'spec.selector.matchLabels', labels, 'this policy');
}

export const peerAuthentication: KindDef<PeerAuthenticationSpec> = {
  group: 'security.istio.io',
  kind: 'PeerAuthentication',
  versions: ['v1', 'v1beta1'],
  origin: 'Istio',
  protoNames: true,
  spec,
  rules,
};
