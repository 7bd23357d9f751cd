// WorkloadEntry (networking.istio.io v1, v1beta1, v1alpha3): schema and Istio's rules; also a ServiceEntry endpoint.
import type { WorkloadEntrySpec } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { mapOf, obj, port, str, uint32, type Schema } from './schema.ts';
import { labelsMap } from './common.ts';
import { entries, type RuleContext } from './rules.ts';
import { checkFQDN, isDNS1123Label } from './names.ts';
import { checkUnixAddress, isIPAddress } from './net.ts';

const UNIX_PREFIX = 'unix://';

export function checkPortName(name: string): string | undefined {
  return isDNS1123Label(name) ? undefined : `invalid port name: ${name}`;
}

/** The WorkloadEntry spec, which is also the shape of a ServiceEntry endpoint. */
export const workloadEntrySchema: Schema<Record<string, unknown>> = obj({
  address: str({ maxLength: 256 }),
  ports: mapOf(port(), { key: checkPortName }),
  labels: labelsMap(),
  network: str({ maxLength: 2048 }),
  locality: str({ maxLength: 2048 }),
  weight: uint32(),
  serviceAccount: str({ maxLength: 253 }),
});

export interface WorkloadEntryCheck {
  /** Port names the owning ServiceEntry declares; undefined for a standalone WorkloadEntry. */
  servicePorts?: ReadonlySet<string>;
  /** DNS names are fine as addresses (standalone entries, DNS resolution) or not (STATIC). */
  allowFQDN: boolean;
}

/** Istio's rules for a workload address and ports. `path` is the entry (`spec` or `spec.endpoints[0]`). */
export function checkWorkloadEntry(ctx: RuleContext, path: string, we: WorkloadEntrySpec, opts: WorkloadEntryCheck): void {
  const addressPath = joinPath(path, 'address');
  const address = we.address ?? '';
  if (address === '') {
    if (!we.network) {
      ctx.error(addressPath, 'address is required (or a network, for a workload reached through a gateway)', Codes.REQUIRED);
      return;
    }
    ctx.warn(addressPath, Codes.SUSPICIOUS, `address is unset with network ${JSON.stringify(we.network)}`);
  }
  const unix = address.startsWith(UNIX_PREFIX);
  if (unix) {
    const problem = checkUnixAddress(address.slice(UNIX_PREFIX.length));
    if (problem) ctx.error(addressPath, problem);
    if (we.ports && Object.keys(we.ports).length > 0) ctx.error(joinPath(path, 'ports'), `unix endpoint ${address} must not include ports`, Codes.CONFLICT);
    if (opts.servicePorts && opts.servicePorts.size !== 1) ctx.error(addressPath, 'exactly 1 service port required for unix endpoints');
  } else if (address !== '' && !isIPAddress(address)) {
    if (!opts.allowFQDN) ctx.error(addressPath, `endpoint address ${JSON.stringify(address)} is not a valid IP address`);
    else if (checkFQDN(address)) ctx.error(addressPath, `endpoint address ${JSON.stringify(address)} is not a valid FQDN or an IP address`);
  }
  if (opts.servicePorts) {
    for (const [name, number, p] of entries(we.ports, joinPath(path, 'ports'))) {
      if (!opts.servicePorts.has(name)) ctx.error(p, `endpoint port ${number} (${JSON.stringify(name)}) is not defined by the service entry`);
    }
  }
}

export const workloadEntry: KindDef<WorkloadEntrySpec> = {
  group: 'networking.istio.io',
  kind: 'WorkloadEntry',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  origin: 'Istio',
  protoNames: true,
  spec: workloadEntrySchema,
  specRequired: true,
  rules: (spec, ctx) => checkWorkloadEntry(ctx, 'spec', spec, { allowFQDN: true }),
};
