// `weft explain`: which route a request would take through the mesh, and why the others did not match.
//
// It runs the real pieces without running a mesh: the files are loaded and translated for the proxy
// the request comes from, the snapshot is compiled as a proxy compiles it, and the proxy's own
// virtual-host lookup and first-match routing decide. explain.ts in proxy/routing adds the reasons.

import type { IncomingMessage } from 'node:http';
import { relative } from 'node:path';
import { formatDiagnostic, loadMesh } from '../api/index.ts';
import type { Diagnostic, HTTPMatchRequest, Resource, VirtualServiceSpec, WorkloadSpec } from '../api/types.ts';
import { buildRegistry, labelsMatch, type Registry, type WorkloadInstance } from '../registry/registry.ts';
import { translate } from '../translate/translate.ts';
import { spiffe } from '../translate/identity.ts';
import { edgeProxyNode } from '../translate/gateways.ts';
import type { ClusterConfig, LbConfig, ProxyNode, RouteConfig } from '../wire/snapshot.ts';
import { compileSnapshot, findVirtualHost, type CompiledVirtualHost, type RuntimeConfig } from '../proxy/compile.ts';
import { resolveTarget } from '../proxy/pipeline.ts';
import { findRoute } from '../proxy/routing/match.ts';
import { explainRoute, simulatedRequest } from '../proxy/routing/explain.ts';
import { EndpointStates } from '../proxy/upstream/endpoints.ts';
import { MeshMetrics } from '../proxy/observe/metrics.ts';
import { systemRandom } from '../core/random.ts';
import { systemClock } from '../core/clock.ts';
import { one, parseArgs, UsageError } from './args.ts';
import { principalArgument, renderSecurity, securityReports, type SecurityReport } from './explain-security.ts';

export const explainHelp = `Usage: weft explain -f PATH... --host HOST [--path /p] [--method GET] [-H 'name: value']...
                    [--query 'a=1&b=2'] [--from WORKLOAD [--namespace NS]] [--principal ID] [-o json]

Show how the mesh would route one request, without running it: the virtual host the Host picks,
each route in order with why it did not match (match item, field, expected vs actual), and the
route that wins with its destinations, their share of traffic, balancing policy and endpoints.
Then, for each workload behind them, what its sidecar does with the call: the PeerAuthentication
mode, whether the connection is mTLS, and which AuthorizationPolicy allows or denies it.

  -f, --file PATH      mesh files or folders, as for \`weft analyze\` (repeatable)
  --host HOST          the request's Host (authority), e.g. sentiment-model or reviews:9080
  --path /p            path, may carry ?query (default /)
  --method M           default GET
  -H, --header 'n: v'  a request header (repeatable)
  --query 'a=1&b=2'    query string (added to any in --path)
  --from WORKLOAD      the Workload sending the request (its sidecar's view: sourceLabels,
                       sourceNamespace, short names of its namespace); default: the edge
  --namespace NS       the --from Workload's namespace, when the name is in several
  --principal ID       the caller's identity for authorization, as a SPIFFE ID or Istio's form
                       (cluster.local/ns/NS/sa/SA), or none; default: the --from Workload's
                       (or the edge's) own identity
  -o json              machine-readable output

Endpoints are as configured, not live health: every Workload replica counts as ready, at a
placeholder address (127.0.0.1:0) where its sidecar listens at run time.

Exit codes: 0 explained (a request that gets no route is explained too), 1 configuration errors,
2 usage errors.
`;

const EDGE: ProxyNode = edgeProxyNode();

const NOTE = 'endpoints as configured; not live health';
const PLACEHOLDER = { host: '127.0.0.1', port: 0 };

export async function explainCommand(argv: string[]): Promise<number> {
  try {
    return await explain(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`weft explain: ${err.message}\n\n${explainHelp}`);
    return 2;
  }
}

interface Request {
  method: string;
  authority: string;
  port: number;
  path: string;
  query: string;
  headers: Record<string, string>;
}

async function explain(argv: string[]): Promise<number> {
  const { flags, rest } = parseArgs(argv, [
    { name: 'file', short: 'f', value: true, repeat: true },
    { name: 'host', value: true },
    { name: 'path', value: true },
    { name: 'method', value: true },
    { name: 'header', short: 'H', value: true, repeat: true },
    { name: 'query', value: true },
    { name: 'from', value: true },
    { name: 'namespace', value: true },
    { name: 'principal', value: true },
    { name: 'output', short: 'o', value: true },
    { name: 'help', short: 'h' },
  ]);
  if (flags.help) {
    process.stdout.write(explainHelp);
    return 0;
  }
  const paths = [...((flags.file as string[] | undefined) ?? []), ...rest];
  if (paths.length === 0) throw new UsageError('weft explain needs at least one -f PATH');
  const output = one(flags, 'output');
  if (output && output !== 'json') throw new UsageError('-o takes "json"');
  const json = output === 'json';
  const request = requestFrom(flags);
  const from = one(flags, 'from');
  const namespace = one(flags, 'namespace');
  if (namespace && !from) throw new UsageError('--namespace goes with --from (the edge is in namespace default)');
  const principalText = one(flags, 'principal');
  const principalOverride = principalText === undefined ? undefined : principalArgument(principalText);
  if (principalText !== undefined && principalOverride === undefined)
    throw new UsageError(`--principal takes a SPIFFE ID (spiffe://cluster.local/ns/NS/sa/SA), Istio's form (cluster.local/ns/NS/sa/SA) or none (got "${principalText}")`);

  const { resources, diagnostics } = await loadMesh(paths);
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    if (json) process.stdout.write(JSON.stringify({ errors: errors.length, diagnostics }, null, 2) + '\n');
    else {
      for (const d of diagnostics) process.stdout.write(formatDiagnostic(d) + '\n');
      process.stderr.write(`weft explain: ${errors.length} configuration error(s); nothing to explain until they are fixed\n`);
    }
    return 1;
  }
  const warnings = diagnostics;
  if (!json) for (const d of warnings) process.stderr.write(formatDiagnostic(d) + '\n');

  const workloads = resources.filter((r): r is Resource<WorkloadSpec> => r.kind === 'Workload');
  const picked = from ? pickWorkload(workloads, from, namespace) : undefined;
  if (typeof picked === 'string') {
    // The argument names nothing in these files: a usage error, but the help would not say more.
    process.stderr.write(`weft explain: ${picked}\n`);
    return 2;
  }
  const proxy = picked ? sidecarOf(picked) : EDGE;
  // Every replica ready, at a placeholder address: the mesh as configured, not as it runs.
  const instances: WorkloadInstance[] = workloads.flatMap((w) =>
    Array.from({ length: w.spec.replicas ?? 1 }, (_, i) => ({
      id: `${w.metadata.namespace}/${w.metadata.name}-${i}`,
      workload: w.metadata.name,
      namespace: w.metadata.namespace,
      labels: { ...w.spec.labels },
      serviceAccount: w.spec.serviceAccount ?? 'default',
      inbound: PLACEHOLDER,
      ready: true,
    })),
  );
  const registry = buildRegistry(resources, instances);
  const snapshot = translate({ resources, registry, proxy, version: 1 });
  const endpoints = new EndpointStates();
  let rt: RuntimeConfig;
  try {
    rt = compileSnapshot(snapshot, { endpoints, metrics: new MeshMetrics(), random: systemRandom, clock: systemClock });
  } catch (err) {
    process.stderr.write(`weft explain: the proxy would reject this configuration: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await endpoints.closeAll();
  }

  const report = buildReport(request, proxy, rt, resources, registry, warnings);
  const principal = principalOverride ?? proxy.identity;
  report.request.from.principal = principal || null;
  if (report.result.kind === 'route') {
    const names = new Set((report.result as { destinations: DestinationReport[] }).destinations.map((d) => d.cluster));
    report.security = securityReports(request, principal, rt.snapshot.clusters.filter((c) => names.has(c.name)), resources, sidecarOf);
  }
  process.stdout.write(json ? JSON.stringify(report, null, 2) + '\n' : renderText(report));
  return 0;
}

// ---- the request ---------------------------------------------------------------------------

function requestFrom(flags: Record<string, string[] | boolean>): Request {
  const host = one(flags, 'host');
  if (!host) throw new UsageError('--host HOST is required (the Host header the request carries)');
  if (/[\s/?#@]/.test(host)) throw new UsageError(`--host takes a host or host:port, not a URL (got "${host}")`);
  const rawPath = one(flags, 'path') ?? '/';
  if (!rawPath.startsWith('/')) throw new UsageError(`--path must start with / (got "${rawPath}")`);
  const extraQuery = one(flags, 'query')?.replace(/^\?/, '');
  const pathAndQuery = extraQuery ? `${rawPath}${rawPath.includes('?') ? '&' : '?'}${extraQuery}` : rawPath;
  // The proxy's own phase 0 (authority, port — 80 when absent —, path, query); it reads only these two fields.
  const target = resolveTarget({ url: pathAndQuery, headers: { host } } as unknown as IncomingMessage)!;
  const headers: Record<string, string> = {};
  for (const h of (flags.header as string[] | undefined) ?? []) {
    const colon = h.indexOf(':', 1); // from 1, so a pseudo-header name like :authority is refused below rather than split
    const name = (colon === -1 ? '' : h.slice(0, colon)).trim().toLowerCase();
    if (!name || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new UsageError(`-H takes 'name: value' (got "${h}")`);
    if (name === 'host') throw new UsageError('give the Host with --host, not -H');
    const value = h.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value; // repeated headers, as Node joins them
  }
  return {
    method: (one(flags, 'method') ?? 'GET').toUpperCase(),
    authority: target.authority,
    port: target.port,
    path: target.path,
    query: target.query,
    headers,
  };
}

/** The --from Workload, or what is wrong with the name. */
function pickWorkload(workloads: Resource<WorkloadSpec>[], name: string, namespace: string | undefined): Resource<WorkloadSpec> | string {
  const named = workloads.filter((w) => w.metadata.name === name && (!namespace || w.metadata.namespace === namespace));
  const known = workloads.map((w) => `${w.metadata.namespace}/${w.metadata.name}`).join(', ') || 'none';
  if (named.length === 0) return `--from: no Workload "${name}"${namespace ? ` in namespace ${namespace}` : ''} in these files (workloads: ${known})`;
  if (named.length > 1) return `--from: Workload "${name}" is in several namespaces (${named.map((w) => w.metadata.namespace).join(', ')}); add --namespace`;
  return named[0];
}

/** The ProxyNode the supervisor gives a Workload's first replica. */
function sidecarOf(w: Resource<WorkloadSpec>): ProxyNode {
  const sa = w.spec.serviceAccount ?? 'default';
  return {
    id: `${w.metadata.namespace}/${w.metadata.name}-0`,
    kind: 'sidecar',
    workload: w.metadata.name,
    namespace: w.metadata.namespace,
    app: w.spec.labels.app ?? w.metadata.name,
    version: w.spec.labels.version ?? 'unknown',
    serviceAccount: sa,
    identity: spiffe(w.metadata.namespace, sa),
    labels: { ...w.spec.labels },
  };
}

// ---- the report (what -o json prints; the text form renders it) -------------------------------

export interface ExplainReport {
  request: Request & { from: { kind: ProxyNode['kind']; workload: string; namespace: string; labels: Record<string, string>; principal?: string | null } };
  note: string;
  /** null: no virtual host for the Host (404 NR); then `knownHosts` lists what would be. */
  virtualHost: { name: string; matchedDomain: string; domains: string[]; virtualService: string | null } | null;
  knownHosts?: Array<{ name: string; domains: string[] }>;
  routes: RouteReport[];
  /** HTTP routes of the VirtualService that this proxy does not have, and why. */
  notOnThisProxy: Array<{ route: string; source: string | null; why: string }>;
  /** The winning route's name; null when nothing matches. */
  winner: string | null;
  result: ResultReport;
  /** Per workload the request may reach: PeerAuthentication and the AuthorizationPolicy decision. */
  security?: SecurityReport[];
  warnings: Diagnostic[];
}

export interface RouteReport {
  name: string;
  source: string | null;
  /** `matched` (the winner), `no match`, or `not reached` (after the winner). */
  verdict: 'matched' | 'no match' | 'not reached';
  matchedBy?: string;
  reasons: string[];
}

export type ResultReport =
  | { kind: 'noRoute'; status: 404; flag: 'NR'; message: string }
  | { kind: 'route'; destinations: DestinationReport[]; [behaviour: string]: unknown }
  | { kind: 'directResponse'; status: number; body?: string; [behaviour: string]: unknown }
  | { kind: string; [field: string]: unknown };

export interface DestinationReport {
  cluster: string;
  service: string;
  port: number;
  subset: string | null;
  weight: number;
  /** weight / Σ weights, 0..1. */
  probability: number;
  lb: LbConfig;
  balancing: string;
  endpoints: Array<{ workload: string; namespace: string; address: string; weight: number; sidecar: boolean }>;
  /** Why there is no endpoint, when there is none (the proxy answers 503 UH). */
  noEndpoints?: string;
}

function buildReport(
  request: Request,
  proxy: ProxyNode,
  rt: RuntimeConfig,
  resources: readonly Resource[],
  registry: Registry,
  warnings: Diagnostic[],
): ExplainReport {
  const base = {
    request: { ...request, from: { kind: proxy.kind, workload: proxy.workload, namespace: proxy.namespace, labels: proxy.labels } },
    note: NOTE,
  };
  const vhost = findVirtualHost(rt, request.authority);
  if (!vhost) {
    return {
      ...base,
      virtualHost: null,
      knownHosts: rt.snapshot.outbound.virtualHosts.map((v) => ({ name: v.name, domains: v.domains })),
      routes: [],
      notOnThisProxy: [],
      winner: null,
      result: { kind: 'noRoute', status: 404, flag: 'NR', message: `no virtual host for Host "${request.authority}"` },
      warnings,
    };
  }
  const req = simulatedRequest(request);
  const winner = findRoute(vhost.routes, req);
  const vs = owningVirtualService(vhost, resources);
  const routes: RouteReport[] = [];
  let reached = true;
  for (const r of vhost.routes) {
    const http = vs ? httpOf(vs, r.config) : undefined;
    const source = http ? where(vs!, `spec.http[${http.index}]`) : null;
    if (!reached) {
      routes.push({ name: r.config.name, source, verdict: 'not reached', reasons: [] });
      continue;
    }
    const index = http ? matchIndex(http.spec, proxy, r.config) : undefined;
    const e = explainRoute(r.config, req, { matchIndex: index });
    if (e.matched !== (r === winner)) throw new Error(`explain and the proxy disagree on route ${r.config.name}`);
    // Match items translation left out for this proxy are part of why the route did not match.
    const elsewhere = http && index && !e.matched ? otherSourceItems(http.spec, index) : [];
    const reasons = [...e.reasons, ...elsewhere].sort((a, b) => itemOf(a) - itemOf(b)); // stable: fields keep their order
    routes.push({ name: r.config.name, source, verdict: e.matched ? 'matched' : 'no match', matchedBy: e.matchedBy, reasons });
    if (e.matched) reached = false;
  }
  return {
    ...base,
    virtualHost: {
      name: vhost.config.name,
      matchedDomain: matchedDomain(vhost, request.authority),
      domains: vhost.config.domains,
      virtualService: vs ? `${vs.metadata.namespace}/${vs.metadata.name}` : null,
    },
    routes,
    notOnThisProxy: vs ? missingRoutes(vs, vhost, proxy) : [],
    winner: winner?.config.name ?? null,
    result: winner ? resultOf(winner.config, rt, registry) : { kind: 'noRoute', status: 404, flag: 'NR', message: 'no route matches' },
    warnings,
  };
}

/** Which of the virtual host's domains the authority hit, as findVirtualHost looks them up. */
function matchedDomain(vhost: CompiledVirtualHost, authority: string): string {
  const a = authority.toLowerCase();
  const domains = vhost.config.domains.map((d) => d.toLowerCase());
  if (domains.includes(a)) return a;
  const colon = a.lastIndexOf(':');
  const hostOnly = colon > 0 && !a.endsWith(']') ? a.slice(0, colon) : a;
  const wildcards = domains.filter((d) => d.startsWith('*.') && hostOnly.endsWith(d.slice(1)));
  return wildcards.sort((x, y) => y.length - x.length)[0] ?? '*';
}

/** Route names are `<ns>/<virtual service>/<http name or index>`; the default route has no VirtualService. */
function owningVirtualService(vhost: CompiledVirtualHost, resources: readonly Resource[]): Resource<VirtualServiceSpec> | undefined {
  const parts = vhost.routes[0]?.config.name.split('/');
  if (!parts || parts.length < 3) return undefined;
  return resources.find(
    (r): r is Resource<VirtualServiceSpec> => r.kind === 'VirtualService' && r.metadata.namespace === parts[0] && r.metadata.name === parts[1],
  );
}

function httpOf(vs: Resource<VirtualServiceSpec>, route: RouteConfig): { index: number; spec: NonNullable<VirtualServiceSpec['http']>[number] } | undefined {
  const key = route.name.split('/').slice(2).join('/');
  const http = vs.spec.http ?? [];
  const index = http.findIndex((h, i) => (h.name ?? String(i)) === key);
  return index === -1 ? undefined : { index, spec: http[index] };
}

/** Whether a match item is for this proxy: translate keeps only these (sourceLabels, sourceNamespace, gateways). */
function forThisProxy(m: HTTPMatchRequest, proxy: ProxyNode): boolean {
  if (m.sourceLabels && !labelsMatch(m.sourceLabels, proxy.labels)) return false;
  if (m.sourceNamespace && m.sourceNamespace !== proxy.namespace) return false;
  if (m.gateways && m.gateways.length > 0 && !m.gateways.includes('mesh')) return false;
  return true;
}

/** The VirtualService index of each match item the route kept, so reasons say `match[i]` as written. */
function matchIndex(http: { match?: HTTPMatchRequest[] }, proxy: ProxyNode, route: RouteConfig): number[] | undefined {
  const kept = (http.match ?? []).flatMap((m, i) => (forThisProxy(m, proxy) ? [i] : []));
  return kept.length === route.match.length ? kept : undefined;
}

function otherSourceItems(http: { match?: HTTPMatchRequest[] }, kept: number[]): string[] {
  return (http.match ?? []).flatMap((m, i) => (kept.includes(i) ? [] : [`match[${i}]: only for other sources (${sourceText(m)})`]));
}

const itemOf = (reason: string) => Number(/^match\[(\d+)\]/.exec(reason)?.[1] ?? 0);

function missingRoutes(vs: Resource<VirtualServiceSpec>, vhost: CompiledVirtualHost, proxy: ProxyNode): ExplainReport['notOnThisProxy'] {
  const present = new Set(vhost.routes.map((r) => r.config.name));
  const out: ExplainReport['notOnThisProxy'] = [];
  (vs.spec.http ?? []).forEach((h, i) => {
    const name = `${vs.metadata.namespace}/${vs.metadata.name}/${h.name ?? i}`;
    if (present.has(name)) return;
    const matches = h.match ?? [];
    const why =
      matches.length > 0 && !matches.some((m) => forThisProxy(m, proxy))
        ? `every match item is for other sources (${matches.map(sourceText).join('; ')}), not ${proxy.kind === 'edge' ? 'the edge' : `${proxy.namespace}/${proxy.workload}`}`
        : 'Weft does not apply this route (weft analyze says why)';
    out.push({ route: name, source: where(vs, `spec.http[${i}]`), why });
  });
  return out;
}

function sourceText(m: HTTPMatchRequest): string {
  const parts: string[] = [];
  if (m.sourceLabels) parts.push(`sourceLabels ${Object.entries(m.sourceLabels).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (m.sourceNamespace) parts.push(`sourceNamespace ${m.sourceNamespace}`);
  if (m.gateways?.length) parts.push(`gateways ${m.gateways.join(',')}`);
  return parts.join(' ') || 'any source';
}

function where(r: Resource, path: string): string | null {
  try {
    const p = r.posOf(path);
    const rel = relative(process.cwd(), p.file);
    return `${rel && !rel.startsWith('..') ? rel : p.file}:${p.line}:${p.col}`;
  } catch {
    return null;
  }
}

function resultOf(route: RouteConfig, rt: RuntimeConfig, registry: Registry): ResultReport {
  const action = route.action;
  if (action.kind !== 'route') return { ...action };
  const { kind, destinations, ...behaviour } = action;
  const total = destinations.reduce((s, d) => s + d.weight, 0);
  const clusters = new Map(rt.snapshot.clusters.map((c) => [c.name, c]));
  return {
    kind,
    ...behaviour,
    destinations: destinations.map((d): DestinationReport => {
      const c = clusters.get(d.cluster)!;
      const probability = total > 0 ? d.weight / total : destinations.length === 1 ? 1 : 0;
      return {
        cluster: c.name,
        service: c.service.host,
        port: c.service.port,
        subset: c.subset ?? null,
        weight: d.weight,
        probability,
        lb: c.lb,
        balancing: balancing(c.lb),
        endpoints: c.endpoints.map((e) => ({
          workload: e.workload,
          namespace: e.namespace,
          address: `${e.host}:${e.port}`,
          weight: e.weight,
          sidecar: e.sidecar,
        })),
        ...(c.endpoints.length === 0 ? { noEndpoints: whyNoEndpoints(c, registry) } : {}),
      };
    }),
  };
}

function whyNoEndpoints(c: ClusterConfig, registry: Registry): string {
  const service = registry.services.get(c.service.host);
  if (!service) return `no Service or ServiceEntry defines ${c.service.host}`;
  if (!service.ports.some((p) => p.port === c.service.port)) return `${c.service.host} has no port ${c.service.port}`;
  if (registry.endpoints(service).length === 0) return `no Workload or WorkloadEntry is selected by ${c.service.host}`;
  return c.subset ? `no endpoint of ${c.service.host} has subset ${c.subset}'s labels (or the subset is not defined)` : 'none';
}

export function balancing(lb: LbConfig): string {
  if ('simple' in lb) {
    // Anything else the policy carries (slow start, …) as written.
    const extra = Object.entries(lb).filter(([k]) => k !== 'simple');
    return [lb.simple, ...extra.map(([k, v]) => `${k} ${JSON.stringify(v)}`)].join(', ');
  }
  const { key, algorithm } = lb.consistentHash;
  const on =
    key === undefined
      ? 'no key'
      : 'header' in key
      ? `header ${key.header}`
      : 'cookie' in key
        ? `cookie ${key.cookie.name}${key.cookie.ttlSeconds ? ` (created with ttl ${key.cookie.ttlSeconds}s)` : ''}`
        : 'sourceIp' in key
          ? 'source IP'
          : `query parameter ${key.queryParameter}`;
  const algo = 'ringHash' in algorithm ? `ring hash, minimum ring ${algorithm.ringHash.minimumRingSize}` : `Maglev, table ${algorithm.maglev.tableSize}`;
  return `consistent hash on ${on} (${algo})`;
}

export function percent(p: number): string {
  return `${Number((p * 100).toFixed(1))} %`;
}

// ---- text ------------------------------------------------------------------------------------

function renderText(r: ExplainReport): string {
  const out: string[] = [];
  const q = r.request.query ? `?${r.request.query}` : '';
  out.push(`Request   ${r.request.method} http://${r.request.authority}${r.request.path}${q}`);
  for (const [k, v] of Object.entries(r.request.headers)) out.push(`          ${k}: ${v}`);
  const f = r.request.from;
  const labels = Object.entries(f.labels).map(([k, v]) => `${k}=${v}`).join(',');
  out.push(`From      ${f.kind === 'edge' ? 'the edge' : `the sidecar of ${f.namespace}/${f.workload}`} (namespace ${f.namespace}, labels ${labels})`);
  out.push(`Note      ${r.note} (every Workload replica counts as ready, at placeholder ${PLACEHOLDER.host}:${PLACEHOLDER.port})`);
  out.push('');

  if (!r.virtualHost) {
    out.push(`Virtual host: none for Host "${r.request.authority}" → 404 NR`);
    out.push('Known hosts:');
    for (const h of r.knownHosts ?? []) out.push(`  ${h.name}  (${h.domains.join(', ')})`);
    return out.join('\n') + '\n';
  }
  const vh = r.virtualHost;
  out.push(`Virtual host  ${vh.name}`);
  out.push(`  Host "${r.request.authority}" matched domain "${vh.matchedDomain}" (domains: ${vh.domains.join(', ')})`);
  out.push(vh.virtualService ? `  routes from VirtualService ${vh.virtualService}` : '  no VirtualService for this host: the default route sends everything to the service');
  out.push('');
  out.push('Routes (the first match wins)');
  r.routes.forEach((rt, i) => {
    const at = rt.source ? `  ${rt.source}` : '';
    if (rt.verdict === 'matched') out.push(`  ${i + 1}. ${rt.name}  ✔ matches, ${rt.matchedBy}${at}`);
    else if (rt.verdict === 'no match') {
      out.push(`  ${i + 1}. ${rt.name}  ✘ no match${at}`);
      for (const why of rt.reasons) out.push(`       ${why}`);
    } else out.push(`  ${i + 1}. ${rt.name}  – not reached${at}`);
  });
  if (r.routes.length === 0) out.push('  (none)');
  for (const m of r.notOnThisProxy) out.push(`  -  ${m.route}  not on this proxy: ${m.why}${m.source ? `  ${m.source}` : ''}`);
  out.push('');

  const res = r.result;
  if (res.kind === 'noRoute') {
    out.push(`Result    404 NR: ${res.message}`);
  } else if (res.kind === 'route') {
    const { destinations, kind: _kind, ...behaviour } = res as { kind: 'route'; destinations: DestinationReport[] } & Record<string, unknown>;
    out.push(`Result    route ${r.winner}`);
    for (const d of destinations) {
      out.push(`  ${percent(d.probability).padStart(7)}  ${d.cluster}${d.subset ? `  (subset ${d.subset})` : ''}  weight ${d.weight}`);
      out.push(`           balancing ${d.balancing}`);
      if (d.endpoints.length === 0) out.push(`           no endpoints: ${d.noEndpoints} → 503 UH`);
      for (const e of d.endpoints) out.push(`           endpoint ${e.namespace}/${e.workload}  ${e.address}  weight ${e.weight}${e.sidecar ? '' : '  (no sidecar)'}`);
    }
    for (const [k, v] of Object.entries(behaviour)) out.push(`  ${behaviourText(k, v)}`);
    out.push(...renderSecurity(r.security ?? [], r.request.from.principal ?? ''));
  } else if (res.kind === 'directResponse') {
    const { kind: _kind, status, body, ...behaviour } = res as { kind: string; status: number; body?: string } & Record<string, unknown>;
    out.push(`Result    direct response from ${r.winner}: ${status}${body !== undefined ? ` ${JSON.stringify(body)}` : ''}`);
    for (const [k, v] of Object.entries(behaviour)) out.push(`  ${behaviourText(k, v)}`);
  } else {
    const { kind, ...fields } = res;
    out.push(`Result    ${kind} from ${r.winner}: ${JSON.stringify(fields)}`);
  }
  return out.join('\n') + '\n';
}

/** What a route does besides choosing destinations, one line each (the JSON form has every field). */
function behaviourText(key: string, v: unknown): string {
  if (key === 'timeoutMs') return `timeout ${v} ms`;
  if (key === 'retries' && v && typeof v === 'object') {
    const r = v as { attempts?: number; retryOn?: string[]; perTryTimeoutMs?: number };
    if (!r.attempts) return 'retries off';
    return `retries ${r.attempts} on ${(r.retryOn ?? []).join(',')}${r.perTryTimeoutMs ? `, ${r.perTryTimeoutMs} ms per try` : ''}`;
  }
  return `${key}: ${JSON.stringify(v)}`;
}
