// DestinationRule (networking.istio.io v1, v1beta1, v1alpha3): schema and Istio's validation rules.
import type { DestinationRuleSpec, TrafficPolicy } from './types.ts';
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { bool, duration, enumOf, int, listOf, mapOf, num, obj, str, uint32, type Schema } from './schema.ts';
import { labelsMap, portSelector, stringList, workloadSelector } from './common.ts';
import { checkExportTo, checkSelectorLabels, entries, items, type RuleContext } from './rules.ts';
import { checkFQDN, checkWildcardDomain, isDNS1123Label } from './names.ts';
import { checkPort, isIPAddress } from './net.ts';
import { checkIstioDuration, parseDurationNanos } from '../core/duration.ts';

// ---- schema ----------------------------------------------------------------------------------

// uint64 fields; JSON numbers beyond 2^53 are not exact, and no ring or table is that large.
const uint64 = () => int({ min: 0, max: Number.MAX_SAFE_INTEGER });

const clientTLS = obj({
  mode: enumOf(['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL']),
  clientCertificate: str(),
  privateKey: str(),
  caCertificates: str(),
  credentialName: str(),
  subjectAltNames: stringList(),
  sni: str(),
  insecureSkipVerify: bool(),
  caCrl: str(),
});

const connectionPool = obj({
  tcp: obj({
    maxConnections: int(),
    connectTimeout: duration(),
    tcpKeepalive: obj({ probes: uint32(), time: duration(), interval: duration() }),
    maxConnectionDuration: duration(),
    // 0s turns the idle timeout off, so Istio's usual minimum does not apply here.
    idleTimeout: duration({ istio: false }),
  }),
  http: obj({
    http1MaxPendingRequests: int(),
    http2MaxRequests: int(),
    maxRequestsPerConnection: int(),
    maxRetries: int(),
    idleTimeout: duration(),
    h2UpgradePolicy: enumOf(['DEFAULT', 'DO_NOT_UPGRADE', 'UPGRADE']),
    useClientProtocol: bool(),
    maxConcurrentStreams: int(),
    http2KeepAlive: obj({ interval: duration(), timeout: duration() }),
  }),
});

const outlierDetection = obj(
  {
    splitExternalLocalOriginErrors: bool(),
    consecutiveLocalOriginFailures: uint32(),
    consecutiveGatewayErrors: uint32(),
    consecutive5xxErrors: uint32(),
    interval: duration(),
    baseEjectionTime: duration(),
    maxEjectionPercent: int(),
    minHealthPercent: int(),
    consecutiveErrors: int(),
    outlierDetectionHttpErrorCodes: listOf(int({ min: 100, max: 599 })),
  },
  { deprecated: { consecutiveErrors: 'use "consecutiveGatewayErrors" or "consecutive5xxErrors"' } },
);

const failover = listOf(obj({ from: str(), to: str() }));

const loadBalancer = obj(
  {
    simple: enumOf(['UNSPECIFIED', 'LEAST_CONN', 'RANDOM', 'PASSTHROUGH', 'ROUND_ROBIN', 'LEAST_REQUEST']),
    consistentHash: obj(
      {
        httpHeaderName: str(),
        httpCookie: obj(
          {
            name: str(),
            path: str(),
            // A ttl of 0s is meaningful (a session cookie), so only the syntax is checked.
            ttl: duration({ istio: false }),
            attributes: listOf(obj({ name: str(), value: str() }, { required: ['name'] })),
          },
          { required: ['name'] },
        ),
        useSourceIp: bool(),
        httpQueryParameterName: str(),
        ringHash: obj({ minimumRingSize: uint64() }),
        maglev: obj({ tableSize: uint64() }),
        minimumRingSize: uint64(),
      },
      {
        oneOf: [['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'], ['ringHash', 'maglev']],
        deprecated: { minimumRingSize: 'use "ringHash.minimumRingSize"' },
      },
    ),
    localityLbSetting: obj({
      distribute: listOf(obj({ from: str(), to: mapOf(uint32()) })),
      failover,
      failoverPriority: stringList(),
      enabled: bool(),
    }),
    zoneAwareLbSetting: obj({ enabled: bool(), failover, failoverPriority: stringList(), minClusterSize: int({ min: 1 }) }),
    warmupDurationSecs: duration(),
    warmup: obj(
      {
        duration: duration(),
        minimumPercent: num({ min: 0, max: 100 }),
        // Envoy's slow-start aggression must be positive; 1.0 ramps linearly.
        aggression: num({ min: 0, exclusiveMin: true }),
      },
      { required: ['duration'] },
    ),
  },
  { oneOf: [['simple', 'consistentHash']], deprecated: { warmupDurationSecs: 'use "warmup.duration"' } },
);

const portTrafficPolicy = obj({ port: portSelector(), loadBalancer, connectionPool, outlierDetection, tls: clientTLS });

const trafficPolicy = obj({
  loadBalancer,
  connectionPool,
  outlierDetection,
  tls: clientTLS,
  portLevelSettings: listOf(portTrafficPolicy, { maxItems: 4096 }),
  tunnel: obj({ protocol: str(), targetHost: str(), targetPort: uint32() }, { required: ['targetHost', 'targetPort'] }),
  proxyProtocol: obj({ version: enumOf(['V1', 'V2']) }),
  retryBudget: obj({ percent: num({ min: 0, max: 100 }), budgetInterval: duration({ istio: false }), minRetryConcurrency: uint32() }),
});

const spec: Schema<Record<string, unknown>> = obj(
  {
    host: str(),
    trafficPolicy,
    subsets: listOf(obj({ name: str(), labels: labelsMap(), trafficPolicy }, { required: ['name'] })),
    exportTo: stringList(),
    workloadSelector: workloadSelector(),
  },
  { required: ['host'] },
);

// ---- rules -----------------------------------------------------------------------------------

// Loosely typed views of the parts types.ts leaves open.
type AnyRecord = Record<string, any>;

function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  for (let f = 3; f * f <= x; f += 2) if (x % f === 0) return false;
  return true;
}

function checkOutlierDetection(ctx: RuleContext, path: string, o: AnyRecord | undefined): void {
  if (!o) return;
  if (!o.splitExternalLocalOriginErrors && (o.consecutiveLocalOriginFailures ?? 0) > 0) {
    ctx.error(joinPath(path, 'consecutiveLocalOriginFailures'), 'consecutiveLocalOriginFailures needs splitExternalLocalOriginErrors: true');
  }
  for (const field of ['maxEjectionPercent', 'minHealthPercent']) {
    const v = o[field];
    if (v !== undefined && (v < 0 || v > 100)) ctx.error(joinPath(path, field), `percentage ${v} is not in range 0..100`);
  }
}

function checkConnectionPool(ctx: RuleContext, path: string, c: AnyRecord | undefined): void {
  if (!c) return;
  if (!c.http && !c.tcp) {
    ctx.error(path, 'connection pool must have at least one field', Codes.REQUIRED);
    return;
  }
  const nonNegative = (p: string, values: AnyRecord, fields: string[]) => {
    for (const f of fields) if ((values[f] ?? 0) < 0) ctx.error(joinPath(p, f), 'must be non-negative');
  };
  if (c.http) {
    const p = joinPath(path, 'http');
    nonNegative(p, c.http, ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams']);
    if (c.http.h2UpgradePolicy === 'UPGRADE' && c.http.useClientProtocol) {
      ctx.error(joinPath(p, 'useClientProtocol'), 'useClientProtocol must not be true when h2UpgradePolicy is UPGRADE', Codes.CONFLICT);
    }
    const ka = c.http.http2KeepAlive;
    if (ka) {
      if (ka.interval === undefined) ctx.error(`${p}.http2KeepAlive.interval`, 'http2 keepalive interval is required', Codes.REQUIRED);
      if (ka.timeout === undefined) ctx.error(`${p}.http2KeepAlive.timeout`, 'http2 keepalive timeout is required', Codes.REQUIRED);
    }
  }
  if (c.tcp) {
    const p = joinPath(path, 'tcp');
    nonNegative(p, c.tcp, ['maxConnections']);
    if (c.tcp.idleTimeout !== undefined) {
      const nanos = parseDurationNanos(c.tcp.idleTimeout) ?? 0n;
      const problem = nanos === 0n ? undefined : checkIstioDuration(nanos);
      if (problem) ctx.error(joinPath(p, 'idleTimeout'), problem);
    }
  }
}

function checkLocalities(ctx: RuleContext, path: string, localities: string[]): void {
  // Each locality is region[/zone[/subzone]], with at most one trailing `*`; none may overlap.
  const seen: string[] = [];
  for (const locality of localities) {
    const stars = locality.split('*').length - 1;
    if (stars > 1 || (stars === 1 && !locality.endsWith('*'))) {
      ctx.error(path, `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`);
      return;
    }
    if (locality.split('/').some((part) => part === '')) {
      ctx.error(path, `locality ${locality} must not contain empty region/zone/subzone info`);
      return;
    }
    const norm = locality.replace(/\/?\*$/, '');
    if (seen.some((s) => s === '' || norm === '' || s === norm || norm.startsWith(`${s}/`) || s.startsWith(`${norm}/`))) {
      ctx.error(path, `locality ${locality} overlap with previous specified ones`);
      return;
    }
    seen.push(norm);
  }
}

function checkLocalityLb(ctx: RuleContext, path: string, lb: AnyRecord, hasOutlier: boolean, zoneAware: boolean): void {
  const distribute: AnyRecord[] = (lb.distribute ?? []).filter(Boolean);
  const failover: AnyRecord[] = (lb.failover ?? []).filter(Boolean);
  const priority: string[] = (lb.failoverPriority ?? []).filter((x: unknown) => typeof x === 'string');
  const topology = ['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone'];
  if (zoneAware) {
    for (const label of priority) {
      if (topology.includes(label)) ctx.error(joinPath(path, 'failoverPriority'), `failoverPriority for zone aware load balancing must not use topology label '${label}'; region and zone routing are automatic`);
    }
  } else {
    if (distribute.length > 0 && failover.length > 0) {
      ctx.error(joinPath(path, 'failover'), "can not simultaneously specify 'distribute' and 'failover'", Codes.CONFLICT);
      return;
    }
    if (failover.length > 0) {
      const clash = priority.find((label) => topology.includes(label));
      if (clash) {
        ctx.error(joinPath(path, 'failoverPriority'), `can not simultaneously set 'failover' and topology label '${clash}' in 'failoverPriority'`, Codes.CONFLICT);
        return;
      }
    }
    for (const [d, p] of items(lb.distribute as AnyRecord[] | undefined, joinPath(path, 'distribute'))) {
      let total = 0;
      for (const [, weight] of entries<number>(d.to, joinPath(p, 'to'))) {
        if (weight <= 0 || weight > 100) {
          ctx.error(joinPath(p, 'to'), 'locality weight must be in range [1, 100]');
          return;
        }
        total += weight;
      }
      if (total !== 100) {
        ctx.error(joinPath(p, 'to'), `total locality weight ${total} != 100`);
        return;
      }
      checkLocalities(ctx, joinPath(p, 'to'), Object.keys(d.to ?? {}));
    }
    checkLocalities(ctx, joinPath(path, 'distribute'), distribute.map((d) => d.from ?? ''));
  }
  if ((failover.length > 0 || priority.length > 0) && !hasOutlier) {
    ctx.warn(path, Codes.SUSPICIOUS, 'outlier detection policy must be provided for failover');
  }
  for (const [f, p] of items(lb.failover as AnyRecord[] | undefined, joinPath(path, 'failover'))) {
    if (f.from === f.to) ctx.error(p, 'failover settings must specify different regions');
    if (String(f.from ?? '').includes('/') || String(f.to ?? '').includes('/')) ctx.error(p, 'failover only specifies regions');
    if (String(f.from ?? '').includes('*') || String(f.to ?? '').includes('*')) ctx.error(p, "failover region should not contain '*' wildcard");
  }
}

function checkLoadBalancer(ctx: RuleContext, path: string, lb: AnyRecord | undefined, hasOutlier: boolean): void {
  if (!lb) return;
  const ch = lb.consistentHash;
  if (ch) {
    const p = joinPath(path, 'consistentHash');
    const names = new Set<string>();
    for (const [attr, ap] of items(ch.httpCookie?.attributes as AnyRecord[] | undefined, `${p}.httpCookie.attributes`)) {
      if (!attr.name) ctx.error(joinPath(ap, 'name'), 'cookie attribute name cannot be empty');
      else if (names.has(attr.name)) ctx.error(joinPath(ap, 'name'), `duplicate cookie attribute name: ${attr.name}`, Codes.DUPLICATE);
      else names.add(attr.name);
    }
    if (ch.minimumRingSize !== undefined && (ch.ringHash || ch.maglev)) {
      ctx.error(joinPath(p, 'minimumRingSize'), 'only one of minimumRingSize or maglev/ringHash can be specified', Codes.CONFLICT);
    }
    if (ch.maglev) {
      const size = ch.maglev.tableSize ?? 0;
      const sp = `${p}.maglev.tableSize`;
      if (size === 0) ctx.error(sp, 'tableSize must be set for maglev', Codes.REQUIRED);
      else if (size >= 5000011) ctx.error(sp, 'tableSize must be less than 5000011 for maglev');
      else if (!isPrime(size)) ctx.error(sp, 'tableSize must be a prime number for maglev');
    }
  }
  if (lb.localityLbSetting && lb.zoneAwareLbSetting) {
    ctx.error(joinPath(path, 'zoneAwareLbSetting'), 'only one of localityLbSetting and zoneAwareLbSetting can be set', Codes.CONFLICT);
  }
  if (lb.localityLbSetting) checkLocalityLb(ctx, joinPath(path, 'localityLbSetting'), lb.localityLbSetting, hasOutlier, false);
  if (lb.zoneAwareLbSetting) checkLocalityLb(ctx, joinPath(path, 'zoneAwareLbSetting'), lb.zoneAwareLbSetting, hasOutlier, true);
}

function checkClientTLS(ctx: RuleContext, path: string, tls: AnyRecord | undefined): void {
  if (!tls) return;
  if (tls.credentialName?.startsWith('configmap://')) {
    const rest = tls.credentialName.slice('configmap://'.length);
    const ns = rest.includes('/') ? rest.split('/')[0] : ctx.namespace;
    if (ns !== ctx.namespace) ctx.error(joinPath(path, 'credentialName'), `invalid configmap:// credentialName: namespace must match the configuration namespace "${ctx.namespace}"`);
  }
  if (tls.insecureSkipVerify) {
    if (tls.mode === 'SIMPLE' && (tls.caCertificates || tls.credentialName || tls.subjectAltNames)) {
      ctx.error(joinPath(path, 'insecureSkipVerify'), 'cannot specify caCertificates, credentialName or subjectAltNames when insecureSkipVerify is true', Codes.CONFLICT);
    }
    if (tls.mode === 'MUTUAL' && (tls.caCertificates || tls.subjectAltNames)) {
      ctx.error(joinPath(path, 'insecureSkipVerify'), 'cannot specify caCertificates or subjectAltNames when insecureSkipVerify is true', Codes.CONFLICT);
    }
  }
  if ((tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && tls.credentialName) {
    if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
      ctx.error(joinPath(path, 'credentialName'), 'cannot specify client certificates, CA certificate or CA CRL when credentialName is set', Codes.CONFLICT);
    }
    return;
  }
  if (tls.mode === 'MUTUAL') {
    if (!tls.clientCertificate) ctx.error(joinPath(path, 'clientCertificate'), 'client certificate required for mutual tls', Codes.REQUIRED);
    if (!tls.privateKey) ctx.error(joinPath(path, 'privateKey'), 'private key required for mutual tls', Codes.REQUIRED);
  }
}

function checkTrafficPolicy(ctx: RuleContext, path: string, tp: TrafficPolicy & AnyRecord): void {
  const fields = ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'];
  if (!fields.some((f) => tp[f] !== undefined)) {
    ctx.error(path, 'traffic policy must have at least one field', Codes.REQUIRED);
    return;
  }
  if (tp.tunnel && tp.proxyProtocol) ctx.error(joinPath(path, 'proxyProtocol'), 'tunnel and proxyProtocol must not be set together', Codes.CONFLICT);
  checkOutlierDetection(ctx, joinPath(path, 'outlierDetection'), tp.outlierDetection);
  checkConnectionPool(ctx, joinPath(path, 'connectionPool'), tp.connectionPool);
  checkLoadBalancer(ctx, joinPath(path, 'loadBalancer'), tp.loadBalancer, tp.outlierDetection !== undefined);
  checkClientTLS(ctx, joinPath(path, 'tls'), tp.tls);
  for (const [pl, p] of items(tp.portLevelSettings as AnyRecord[] | undefined, joinPath(path, 'portLevelSettings'))) {
    if (!pl.port) ctx.error(joinPath(p, 'port'), 'port level settings must have a port', Codes.REQUIRED);
    if (!pl.outlierDetection && !pl.connectionPool && !pl.loadBalancer && !pl.tls) {
      ctx.error(p, 'port traffic policy must have at least one field', Codes.REQUIRED);
      continue;
    }
    checkOutlierDetection(ctx, joinPath(p, 'outlierDetection'), pl.outlierDetection);
    checkConnectionPool(ctx, joinPath(p, 'connectionPool'), pl.connectionPool);
    checkLoadBalancer(ctx, joinPath(p, 'loadBalancer'), pl.loadBalancer, pl.outlierDetection !== undefined);
    checkClientTLS(ctx, joinPath(p, 'tls'), pl.tls);
  }
  const tunnel = tp.tunnel as AnyRecord | undefined;
  if (tunnel) {
    const p = joinPath(path, 'tunnel');
    if (tunnel.protocol !== undefined && tunnel.protocol !== '' && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST') {
      ctx.error(joinPath(p, 'protocol'), 'tunnel protocol must be "CONNECT" or "POST"');
    }
    if (tunnel.targetHost !== undefined && checkFQDN(tunnel.targetHost) && !isIPAddress(tunnel.targetHost)) {
      ctx.error(joinPath(p, 'targetHost'), 'tunnel target host must be a valid FQDN or IP address');
    }
    const portProblem = tunnel.targetPort === undefined ? undefined : checkPort(tunnel.targetPort);
    if (portProblem) ctx.error(joinPath(p, 'targetPort'), `tunnel target port is invalid: ${portProblem}`);
  }
}

function rules(spec: DestinationRuleSpec, ctx: RuleContext): void {
  if (spec.host !== undefined) {
    const problem = checkWildcardDomain(spec.host);
    if (problem) ctx.error('spec.host', problem);
  }
  if (spec.trafficPolicy) checkTrafficPolicy(ctx, 'spec.trafficPolicy', spec.trafficPolicy);
  const names = new Map<string, string>();
  for (const [subset, p] of items(spec.subsets, 'spec.subsets')) {
    const np = joinPath(p, 'name');
    if (subset.name !== undefined) {
      if (subset.name === '') ctx.error(np, 'subset name cannot be empty');
      else if (!isDNS1123Label(subset.name)) ctx.error(np, `subset name is invalid: ${subset.name}`);
      const earlier = names.get(subset.name);
      if (earlier !== undefined) ctx.error(np, `duplicate subset name ${JSON.stringify(subset.name)} (also ${earlier})`, Codes.DUPLICATE);
      else names.set(subset.name, p);
    }
    if (subset.trafficPolicy) checkTrafficPolicy(ctx, joinPath(p, 'trafficPolicy'), subset.trafficPolicy);
  }
  checkExportTo(ctx, 'spec.exportTo', spec.exportTo, { destinationRuleWithSelector: spec.workloadSelector !== undefined });
  if (spec.workloadSelector) checkSelectorLabels(ctx, 'spec.workloadSelector.matchLabels', spec.workloadSelector.matchLabels ?? {}, 'this DestinationRule');
}

export const destinationRule: KindDef<DestinationRuleSpec> = {
  group: 'networking.istio.io',
  kind: 'DestinationRule',
  versions: ['v1', 'v1beta1', 'v1alpha3'],
  origin: 'Istio',
  protoNames: true,
  spec,
  rules,
};
