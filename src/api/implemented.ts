// What Weft implements of the configuration it accepts. This is THE table to shrink as features land.
//
// Everything listed here is valid (it passed Istio's rules) but the proxy does not act on it yet,
// so loading it produces one NOT_IMPLEMENTED warning naming the kind or field. When a feature is
// implemented, delete its line; nothing else needs to change.
import type { KindDef } from './kind.ts';
import { joinPath } from './paths.ts';

/** Kinds that load and validate but are ignored as a whole. Keyed `group/Kind`. */
export const NOT_IMPLEMENTED_KINDS: ReadonlySet<string> = new Set([
  'networking.istio.io/Sidecar',
  'networking.istio.io/EnvoyFilter',
  'networking.istio.io/WorkloadGroup',
  'networking.istio.io/ProxyConfig',
  'extensions.istio.io/WasmPlugin',
  'telemetry.istio.io/Telemetry',
  'security.istio.io/RequestAuthentication',
  'flagger.app/Canary',
]);

export interface UnimplementedField {
  /**
   * Field path pattern: `[]` stands for every list index and `{}` for every map key
   * (`spec.http[].fault`). `spec` itself names the whole spec (for rules about absence).
   */
  readonly path: string;
  /** Only values for which this holds are reported (`gateways` other than `mesh`...). */
  readonly when?: (value: unknown) => boolean;
  /** Replaces the standard message when ignoring the field means something specific. */
  readonly message?: (value: unknown) => string;
}


/** Fields of implemented kinds that the proxy ignores. Keyed by kind. */
export const NOT_IMPLEMENTED_FIELDS: Readonly<Record<string, readonly UnimplementedField[]>> = {
  VirtualService: [
    { path: 'spec.exportTo' },
    { path: 'spec.tls' },
    { path: 'spec.tcp' },
    { path: 'spec.http[].match[].statPrefix' },
    { path: 'spec.http[].redirect.prefixRewrite' },
    { path: 'spec.http[].retries.retryRemoteLocalities' },
  ],
  DestinationRule: [
    { path: 'spec.exportTo' },
    { path: 'spec.workloadSelector' },
    // The same policy fields at four levels: the rule, its port-level settings, a subset, and a
    // subset's port-level settings. Implemented: loadBalancer (but PASSTHROUGH and locality),
    // connectionPool, outlierDetection, and tls modes DISABLE, SIMPLE, MUTUAL (with files) and ISTIO_MUTUAL.
    ...['spec.trafficPolicy', 'spec.trafficPolicy.portLevelSettings[]', 'spec.subsets[].trafficPolicy', 'spec.subsets[].trafficPolicy.portLevelSettings[]'].flatMap(
      (at): UnimplementedField[] => [
        { path: `${at}.tls.mode`, when: (v) => v !== 'SIMPLE' && v !== 'DISABLE' && v !== 'ISTIO_MUTUAL' && v !== 'MUTUAL' },
        {
          path: `${at}.tls`,
          when: (v) => (v as { mode?: string })?.mode === 'ISTIO_MUTUAL' && ['sni', 'subjectAltNames', 'caCertificates'].some((f) => (v as Record<string, unknown>)[f] !== undefined),
          message: () => 'with ISTIO_MUTUAL, sni, subjectAltNames and caCertificates are valid Istio but not implemented by Weft (it checks each endpoint against its workload\'s SPIFFE ID and the mesh root); they will be ignored',
        },
        { path: `${at}.tls.credentialName` },
        { path: `${at}.loadBalancer.simple`, when: (v) => v === 'PASSTHROUGH' },
        { path: `${at}.loadBalancer.localityLbSetting` },
        { path: `${at}.loadBalancer.zoneAwareLbSetting` },
      ],
    ),
    ...['spec.trafficPolicy', 'spec.subsets[].trafficPolicy'].flatMap((at): UnimplementedField[] => [
      { path: `${at}.tunnel` },
      { path: `${at}.proxyProtocol` },
    ]),
  ],
  ServiceEntry: [
    { path: 'spec.addresses' },
    { path: 'spec.location' },
    { path: 'spec.exportTo' },
    { path: 'spec.subjectAltNames' },
    { path: 'spec.workloadSelector' },
    // NONE (the default) dials the host the caller named, like DNS; DYNAMIC_DNS is not implemented.
    { path: 'spec.resolution', when: (v) => v === 'DYNAMIC_DNS' },
    {
      path: 'spec.hosts[]',
      when: (h) => String(h).startsWith('*'),
      message: (h) => `host ${JSON.stringify(h)}: a wildcard host would need the proxy to dial whatever host a caller names, which Weft does not do yet; it gets no endpoints`,
    },
  ],
  // The edge serves a Gateway's plain HTTP servers (HTTP, HTTP2, GRPC) on its own address.
  Gateway: [
    {
      path: 'spec.servers[].port.protocol',
      when: (p) => !['HTTP', 'HTTP2', 'GRPC'].includes(String(p).toUpperCase()),
      message: (p) => `a ${String(p)} server is not served by Weft's edge yet (only HTTP, HTTP2 and GRPC); it will be ignored`,
    },
    { path: 'spec.servers[].tls' },
    { path: 'spec.servers[].bind' },
    { path: 'spec.servers[].defaultEndpoint' },
  ],
  Service: [
    { path: 'spec.type', when: (v) => v !== 'ClusterIP' },
    { path: 'spec.externalName' },
    { path: 'spec.sessionAffinity', when: (v) => v === 'ClientIP' },
  ],
};

/** Every concrete path matching a pattern, with the value found there. */
function expand(value: unknown, pattern: string): Array<[string, unknown]> {
  // "spec.http[].match[].gateways[]" → ["spec", "http", "[]", "match", "[]", "gateways", "[]"]
  const steps = pattern.split('.').flatMap((part) => {
    const out: string[] = [];
    let name = part;
    while (name.endsWith('[]') || name.endsWith('{}')) {
      out.unshift(name.slice(-2));
      name = name.slice(0, -2);
    }
    return name === '' ? out : [name, ...out];
  });
  let current: Array<[string, unknown]> = [['spec', value]];
  for (const step of steps.slice(1)) {
    const next: Array<[string, unknown]> = [];
    for (const [path, v] of current) {
      if (step === '[]') {
        if (Array.isArray(v)) v.forEach((item, i) => item !== undefined && next.push([joinPath(path, i), item]));
      } else if (step === '{}') {
        if (v && typeof v === 'object') for (const [k, item] of Object.entries(v)) next.push([joinPath(path, k), item]);
      } else if (v && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, step)) {
        next.push([joinPath(path, step), (v as Record<string, unknown>)[step]]);
      }
    }
    current = next;
  }
  return current;
}

export interface Ignored {
  path: string;
  message: string;
}

/** What of this resource Weft will ignore: the whole resource, or a list of fields. */
export function notImplemented(def: KindDef, namespace: string, name: string, spec: unknown): Ignored[] {
  if (NOT_IMPLEMENTED_KINDS.has(`${def.group}/${def.kind}`)) {
    const what = def.origin === 'Weft' ? 'is Weft configuration that is' : `is valid ${def.origin} configuration but`;
    return [{ path: '', message: `${def.kind} ${namespace}/${name} ${what} not implemented by Weft yet; it will be ignored` }];
  }
  const out: Ignored[] = [];
  for (const field of NOT_IMPLEMENTED_FIELDS[def.kind] ?? []) {
    for (const [path, value] of expand(spec, field.path)) {
      if (field.when && !field.when(value)) continue;
      out.push({ path, message: field.message?.(value) ?? `valid ${def.origin} but not implemented by Weft yet; it will be ignored` });
    }
  }
  return out;
}
