// Cross-resource checks: what no single document can tell (unknown subsets and hosts, duplicates).
import type { Destination, DestinationRuleSpec, Diagnostic, KubeServiceSpec, Resource, ServiceEntrySpec, VirtualServiceSpec } from './types.ts';
import { Codes, makeDiagnostic } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { fqdn, hostCoveredBy, serviceFqdn, CLUSTER_DOMAIN } from './hosts.ts';
import { EDGE_LABELS } from './edge.ts';

function groupOf(apiVersion: string): string {
  const slash = apiVersion.lastIndexOf('/');
  return slash < 0 ? '' : apiVersion.slice(0, slash);
}

function where(r: Resource): string {
  return `${r.source.file}:${r.source.line}:${r.source.col}`;
}

/** Every destination a VirtualService sends to (routes and mirrors), with its field path. */
function* destinations(vs: Resource<VirtualServiceSpec>): Generator<[Destination, string]> {
  const spec = vs.spec;
  for (const [i, route] of (spec.http ?? []).entries()) {
    const p = joinPath('spec.http', i);
    for (const [j, d] of (route.route ?? []).entries()) yield [d.destination, `${p}.route[${j}].destination`];
    if (route.mirror) yield [route.mirror, `${p}.mirror`];
    for (const [j, m] of (route.mirrors ?? []).entries()) yield [m.destination, `${p}.mirrors[${j}].destination`];
  }
  for (const field of ['tcp', 'tls'] as const) {
    for (const [i, route] of ((spec[field] ?? []) as Array<{ route?: Array<{ destination: Destination }> }>).entries()) {
      for (const [j, d] of (route.route ?? []).entries()) yield [d.destination, `spec.${field}[${i}].route[${j}].destination`];
    }
  }
}

/**
 * Names are unique per kind (group + kind, any version: v1 and v1beta1 are the same object). As
 * with `kubectl apply -f` over the same files, a later definition replaces an earlier one: the
 * result keeps the last, and a warning at it names the one it replaced. Order is file order.
 */
export function latestDefinitions(resources: readonly Resource[]): { resources: Resource[]; diagnostics: Diagnostic[] } {
  const byName = new Map<string, Resource>();
  const diagnostics: Diagnostic[] = [];
  for (const r of resources) {
    const key = `${groupOf(r.apiVersion)}/${r.kind}/${r.metadata.namespace}/${r.metadata.name}`;
    const earlier = byName.get(key);
    if (earlier) {
      diagnostics.push(
        makeDiagnostic('warning', Codes.DUPLICATE_NAME, 'metadata.name',
          `${r.kind} ${r.metadata.namespace}/${r.metadata.name} replaces the one defined at ${where(earlier)}, as kubectl apply would; only this definition is used`,
          r.posOf('metadata.name')),
      );
      byName.delete(key); // re-insert so the survivor keeps the later position in file order
    }
    byName.set(key, r);
  }
  return { resources: [...byName.values()], diagnostics };
}

/**
 * Checks the loaded resources against each other:
 * - a destination subset that no DestinationRule for its host defines (error UNKNOWN_SUBSET);
 * - a destination host no Service, ServiceEntry or VirtualService defines (warning UNKNOWN_HOST);
 * - two DestinationRules for one host (warning DUPLICATE_DESTINATION_RULE);
 * - a FallbackPolicy's host and route checked as destinations are, and two for one target
 *   (warning DUPLICATE_FALLBACK_POLICY).
 */
export function analyze(resources: readonly Resource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const at = (r: Resource, severity: 'error' | 'warning', code: string, path: string, text: string) =>
    out.push(makeDiagnostic(severity, code, path, text, r.posOf(path)));

  const services = resources.filter((r): r is Resource<KubeServiceSpec> => r.kind === 'Service' && r.apiVersion === 'v1');
  const entries = resources.filter((r): r is Resource<ServiceEntrySpec> => r.kind === 'ServiceEntry');
  const virtualServices = resources.filter((r): r is Resource<VirtualServiceSpec> => r.kind === 'VirtualService');
  // DestinationRules with a workloadSelector apply to chosen workloads only; they do not define a host's subsets.
  const rules = resources
    .filter((r): r is Resource<DestinationRuleSpec> => r.kind === 'DestinationRule' && !(r.spec as DestinationRuleSpec).workloadSelector)
    .map((r) => ({ r, host: fqdn(r.spec.host, r.metadata.namespace) }));

  const seenRuleHosts = new Map<string, Resource>();
  for (const { r, host } of rules) {
    const first = seenRuleHosts.get(host);
    if (first) {
      at(r, 'warning', Codes.DUPLICATE_DESTINATION_RULE, 'spec.host',
        `another DestinationRule (${first.metadata.namespace}/${first.metadata.name}, ${where(first)}) is for the same host ${host}; Istio merges them, which is rarely intended`);
    } else {
      seenRuleHosts.set(host, r);
    }
  }

  const known: string[] = [
    ...services.map((s) => serviceFqdn(s.metadata.name, s.metadata.namespace)),
    ...entries.flatMap((e) => e.spec.hosts ?? []),
    ...virtualServices.flatMap((v) => (v.spec.hosts ?? []).map((h) => fqdn(h, v.metadata.namespace))),
  ];
  const isKnown = (host: string) => known.some((k) => hostCoveredBy(host, k));

  // Gateways a VirtualService binds to: they must exist, and the edge must be what they select.
  const gateways = new Map(resources.filter((r) => r.kind === 'Gateway').map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  for (const vs of virtualServices) {
    for (const [i, g] of (vs.spec.gateways ?? []).entries()) {
      if (g === 'mesh') continue;
      const key = g.includes('/') ? g : `${vs.metadata.namespace}/${g}`;
      const gw = gateways.get(key);
      const path = joinPath('spec.gateways', i);
      if (!gw) at(vs, 'warning', Codes.UNKNOWN_GATEWAY, path, `gateway ${JSON.stringify(g)} (${key}) is not defined by any Gateway; rules bound to it apply nowhere`);
      else {
        const selector = (gw.spec as { selector?: Record<string, string> }).selector ?? {};
        if (!Object.entries(selector).every(([k, v]) => EDGE_LABELS[k] === v))
          at(vs, 'warning', Codes.GATEWAY_NOT_SERVED, path,
            `gateway ${key} selects ${JSON.stringify(selector)}, which Weft's edge (labels ${JSON.stringify(EDGE_LABELS)}) is not; rules bound to it apply nowhere`);
      }
    }
  }

  /** A (host, subset) a resource names: the subset must be defined, the host should be known. */
  const checkDestination = (r: Resource, dest: Destination, path: string) => {
    const host = fqdn(dest.host, r.metadata.namespace);
    if (dest.subset) {
      // The DestinationRules that apply to this host: same name, or a wildcard covering it.
      const applicable = rules.filter((x) => hostCoveredBy(host, x.host));
      if (!applicable.some((x) => (x.r.spec.subsets ?? []).some((s) => s.name === dest.subset))) {
        const defined = applicable.map((x) => `${x.r.metadata.namespace}/${x.r.metadata.name} defines ${(x.r.spec.subsets ?? []).map((s) => s.name).join(', ') || 'no subsets'}`);
        at(r, 'error', Codes.UNKNOWN_SUBSET, joinPath(path, 'subset'),
          `subset ${JSON.stringify(dest.subset)} is not defined by any DestinationRule for ${host} (${defined.length ? `DestinationRule ${defined.join('; ')}` : 'there is no DestinationRule for this host'})`);
      }
    }
    if (!isKnown(host)) {
      // `reviews.default` is taken as fully qualified, exactly as Istio does; point at the likely intent.
      const likely = host.includes('.') && !host.endsWith(CLUSTER_DOMAIN) && isKnown(`${host}.svc.${CLUSTER_DOMAIN}`) ? `; did you mean ${host}.svc.${CLUSTER_DOMAIN}?` : '';
      at(r, 'warning', Codes.UNKNOWN_HOST, joinPath(path, 'host'),
        `host ${JSON.stringify(dest.host)} (${host}) is not defined by any Service, ServiceEntry or VirtualService${likely}`);
    }
  };

  for (const vs of virtualServices) {
    for (const [dest, path] of destinations(vs)) {
      if (!dest?.host) continue;
      checkDestination(vs, dest, path);
    }
  }

  // FallbackPolicies: what they protect and where their route leads must exist; one per target.
  const protectedBy = new Map<string, Resource>();
  for (const fp of resources) {
    if (fp.kind !== 'FallbackPolicy' || groupOf(fp.apiVersion) !== 'weft.dev') continue;
    const spec = fp.spec as { host: string; subset?: string; route?: Destination };
    checkDestination(fp, spec, 'spec');
    if (spec.route) checkDestination(fp, spec.route, 'spec.route');
    const target = `${fqdn(spec.host, fp.metadata.namespace)}|${spec.subset ?? ''}`;
    const first = protectedBy.get(target);
    if (first) {
      at(fp, 'warning', Codes.DUPLICATE_FALLBACK_POLICY, 'spec.host',
        `FallbackPolicy ${first.metadata.namespace}/${first.metadata.name} (${where(first)}) already protects ${target.replace('|', spec.subset ? ' subset ' : '')}; only the first one applies`);
    } else {
      protectedBy.set(target, fp);
    }
  }
  return out;
}
