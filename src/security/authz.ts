// AuthorizationPolicy evaluation: the policies that apply to one workload compiled into a pure decision function.
//
// Semantics follow Istio (security.istio.io/v1 AuthorizationPolicy; istio/istio
// pilot/pkg/security/authz/{model,builder}, which turn each rule into an Envoy RBAC policy):
//
// - Which policies apply: a policy in the root namespace (`istio-system` by default) applies mesh-wide,
//   one in another namespace only to workloads there; a `selector.matchLabels` narrows that to
//   workloads whose labels include all of them (an empty selector selects all). Policies with
//   `targetRef`/`targetRefs` attach to gateways and waypoints, never to sidecars, so they are skipped.
// - Order: CUSTOM is refused at compile time (not supported) → any matching DENY denies → if no ALLOW
//   policy applies, allow → any matching ALLOW allows → deny. AUDIT policies only mark the request.
//   `spec: {}` is an ALLOW policy with no rules: it matches nothing, so it denies everything;
//   `rules: [{}]` matches everything.
// - A rule matches when one of its `from` entries, one of its `to` entries and every `when` condition
//   match (absent lists match anything). Inside an entry all fields must match; a field matches when
//   any of its values does and none of its `not*` values does.
// - Values: `exact`, `prefix*`, `*suffix`, and `*`. For principals, namespaces, paths and SNI `*` means
//   "non-empty"; for hosts, methods and headers it means "present". Hosts compare without case,
//   everything else with case. Principals are written without `spiffe://` and compared with it.
//   Namespaces, service accounts and trust domains are read from the peer's verified SPIFFE ID, so a
//   plaintext peer has none. Header values are split on commas and each element compared (Istio's
//   generated regex `^v$|^v,.*|.*,v,.*|.*,v$`); Weft also trims the optional whitespace around elements.
//   Paths compare without the query string; `{*}` matches one segment, `{**}` any number (Envoy's
//   URI template: `[a-zA-Z0-9-._~%!$&'()+,;:@]+` and the same with `/`, `*`).
// - Attributes a TCP connection lacks (hosts, methods, paths, request principals, request headers and
//   `request.auth.*`) make an ALLOW rule never match it, and are dropped from DENY and AUDIT rules, so
//   those match more. Istio does the same ("fail closed"); Weft applies the same rule to the
//   `experimental.envoy.filters.*` attributes, which it cannot evaluate at all.
// - Weft has no RequestAuthentication (JWT), so `requestPrincipals` and `request.auth.*` see no value:
//   their values never match and their `not*` values always do, as in Istio without a JWT.
// - `istio.io/dry-run: "true"` policies are evaluated but never enforced; matches are reported.
//
// The request's path must already be normalised (see path.ts): the same path is forwarded to the app.
import { cidrContains, ipBytes, parseCidr, type CidrBlock } from './cidr.ts';
import { parseSpiffeId, SPIFFE_PREFIX, type WorkloadIdentity } from './spiffe.ts';

export const DEFAULT_ROOT_NAMESPACE = 'istio-system';

/** What the caller sees when a request is denied (Envoy's RBAC filter). */
export const AUTHZ_DENIED_STATUS = 403;
export const AUTHZ_DENIED_BODY = 'RBAC: access denied';

// ---- The resource, as validated by api/authorizationpolicy.ts (field names as in Istio's proto) ----

export type AuthzAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

export interface AuthzSource {
  principals?: string[];
  notPrincipals?: string[];
  requestPrincipals?: string[];
  notRequestPrincipals?: string[];
  namespaces?: string[];
  notNamespaces?: string[];
  serviceAccounts?: string[];
  notServiceAccounts?: string[];
  ipBlocks?: string[];
  notIpBlocks?: string[];
  remoteIpBlocks?: string[];
  notRemoteIpBlocks?: string[];
  trustDomains?: string[];
  notTrustDomains?: string[];
}

export interface AuthzOperation {
  hosts?: string[];
  notHosts?: string[];
  ports?: string[];
  notPorts?: string[];
  methods?: string[];
  notMethods?: string[];
  paths?: string[];
  notPaths?: string[];
}

export interface AuthzCondition {
  key: string;
  values?: string[];
  notValues?: string[];
}

export interface AuthzRule {
  from?: Array<{ source?: AuthzSource }>;
  to?: Array<{ operation?: AuthzOperation }>;
  when?: AuthzCondition[];
}

export interface AuthorizationPolicySpec {
  selector?: { matchLabels?: Record<string, string> };
  targetRef?: unknown;
  targetRefs?: unknown[];
  action?: AuthzAction;
  provider?: { name?: string };
  rules?: AuthzRule[];
}

/** One AuthorizationPolicy: plain data, so it can travel in a proxy snapshot. */
export interface AuthzPolicy {
  namespace: string;
  name: string;
  spec: AuthorizationPolicySpec;
  /** The `istio.io/dry-run: "true"` annotation: evaluate and report, never enforce. */
  dryRun?: boolean;
}

/** The workload a sidecar fronts. */
export interface AuthzWorkload {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

export interface AuthzOptions {
  /** The namespace whose policies apply mesh-wide (Istio's meshConfig.rootNamespace). */
  rootNamespace?: string;
}

// ---- The request, as the inbound side of a sidecar sees it ----

export type HeaderView = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface AuthzRequest {
  /**
   * The peer's SPIFFE ID from its verified client certificate (`spiffe://…`), or `''` for a
   * plaintext or certificate-less peer. The peer's namespace, service account and trust domain are
   * read from it, never from anything the peer merely says.
   */
  principal: string;
  /** The connection's peer address (`source.ip`, `ipBlocks`). */
  sourceIp: string;
  /** The original client address (`remote.ip`, `remoteIpBlocks`); defaults to `sourceIp`. */
  remoteIp?: string;
  /** The address the connection arrived on (`destination.ip`). */
  destinationIp?: string;
  /** The workload port the request is for (`ports`, `destination.port`). */
  port: number;
  /** TLS server name the peer asked for (`connection.sni`). */
  sni?: string;
  /** HTTP attributes; absent for a plain TCP connection. */
  http?: {
    /** The Host / :authority header, as sent (port included if sent). */
    host: string;
    method: string;
    /** The normalised path (path.ts); a query string, if still attached, is ignored. */
    path: string;
    /** Lowercase names (as Node delivers them). */
    headers: HeaderView;
  };
}

export interface AuthzDecision {
  allowed: boolean;
  /** `namespace/name` of the policy that decided; undefined when none did (no ALLOW policy, or none matched). */
  policy?: string;
  /** Index of the rule of `policy` that matched. */
  rule?: number;
  /** One line for `weft explain` and the access log. */
  reason: string;
  /** Envoy's response code details for a denial: `rbac_access_denied_matched_policy[…]`. */
  details?: string;
  /** AUDIT policies whose rules matched. */
  audited: string[];
  /** Dry-run policies whose rules matched, as `ACTION namespace/name`. */
  dryRun: string[];
}

export interface CompiledAuthz {
  /** The enforced policies that apply, as `namespace/name` with their action. */
  readonly policies: ReadonlyArray<{ policy: string; action: 'ALLOW' | 'DENY' | 'AUDIT'; dryRun: boolean }>;
  /** Policies left out and why (targetRef, root-namespace scoping, …), for `weft explain`. */
  readonly skipped: ReadonlyArray<{ policy: string; reason: string }>;
  /** Warnings found while compiling (attributes Weft cannot evaluate). */
  readonly notes: readonly string[];
  evaluate(request: AuthzRequest): AuthzDecision;
}

/** A policy Weft cannot enforce as written; compile refuses it (a proxy NACKs the snapshot). */
export class AuthzConfigError extends Error {
  readonly policy: string;
  constructor(policy: string, message: string) {
    super(`AuthorizationPolicy ${policy}: ${message}`);
    this.policy = policy;
  }
}

const ref = (p: AuthzPolicy) => `${p.namespace}/${p.name}`;

/**
 * The policies that apply to a workload, and the ones skipped with a reason. Selection only: this
 * does not validate the policies (compileAuthz does).
 */
export function selectAuthzPolicies(
  policies: readonly AuthzPolicy[],
  workload: AuthzWorkload,
  options: AuthzOptions = {},
): { applied: AuthzPolicy[]; skipped: Array<{ policy: string; reason: string }> } {
  const root = options.rootNamespace ?? DEFAULT_ROOT_NAMESPACE;
  const applied: AuthzPolicy[] = [];
  const skipped: Array<{ policy: string; reason: string }> = [];
  for (const p of policies) {
    if (p.namespace !== workload.namespace && p.namespace !== root) continue;
    if (p.spec.targetRef !== undefined || (p.spec.targetRefs?.length ?? 0) > 0) {
      skipped.push({ policy: ref(p), reason: 'targetRef policies attach to gateways and waypoints, not to sidecars' });
      continue;
    }
    const labels = p.spec.selector?.matchLabels ?? {};
    if (Object.entries(labels).every(([k, v]) => workload.labels[k] === v)) applied.push(p);
  }
  return { applied, skipped };
}

/** Problems that make Weft refuse a policy, whatever workload it selects (for analysis at load time). */
export function authzPolicyProblems(policy: AuthzPolicy): string[] {
  try {
    compilePolicy(policy, []);
    return [];
  } catch (e) {
    return [e instanceof AuthzConfigError ? e.message : String(e)];
  }
}

/** Compiles the policies that apply to `workload`; throws AuthzConfigError for a policy Weft cannot enforce. */
export function compileAuthz(policies: readonly AuthzPolicy[], workload: AuthzWorkload, options: AuthzOptions = {}): CompiledAuthz {
  const { applied, skipped } = selectAuthzPolicies(policies, workload, options);
  const notes: string[] = [];
  const compiled = applied.map((p) => compilePolicy(p, notes));
  const enforced = (a: string) => compiled.filter((c) => c.action === a && !c.dryRun);
  const deny = enforced('DENY');
  const allow = enforced('ALLOW');
  const audit = enforced('AUDIT');
  const dry = compiled.filter((c) => c.dryRun);

  const evaluate = (req: AuthzRequest): AuthzDecision => {
    const ctx = requestContext(req);
    const audited = audit.filter((p) => matchingRule(p, ctx) >= 0).map((p) => p.ref);
    const dryRun = dry.filter((p) => matchingRule(p, ctx) >= 0).map((p) => `${p.action} ${p.ref}`);
    for (const p of deny) {
      const rule = matchingRule(p, ctx);
      if (rule >= 0) {
        return {
          allowed: false,
          policy: p.ref,
          rule,
          reason: `denied by DENY policy ${p.ref} (rule ${rule})`,
          details: `rbac_access_denied_matched_policy[ns[${p.namespace}]-policy[${p.name}]-rule[${rule}]]`,
          audited,
          dryRun,
        };
      }
    }
    if (allow.length === 0) return { allowed: true, reason: 'allowed: no ALLOW policy applies to this workload', audited, dryRun };
    for (const p of allow) {
      const rule = matchingRule(p, ctx);
      if (rule >= 0) return { allowed: true, policy: p.ref, rule, reason: `allowed by ALLOW policy ${p.ref} (rule ${rule})`, audited, dryRun };
    }
    const names = allow.map((p) => p.ref).join(', ');
    return {
      allowed: false,
      reason: `denied: no rule of the ALLOW policies that apply matched (${names})`,
      details: 'rbac_access_denied_matched_policy[none]',
      audited,
      dryRun,
    };
  };

  return Object.freeze({
    policies: Object.freeze(compiled.map((c) => ({ policy: c.ref, action: c.action, dryRun: c.dryRun }))),
    skipped: Object.freeze(skipped),
    notes: Object.freeze(notes),
    evaluate,
  });
}

// ---- Compilation ----

/** When an attribute can be evaluated: always, only on HTTP, or never (Weft lacks it). */
type Availability = 'any' | 'http' | 'never';

interface Ctx {
  req: AuthzRequest;
  tcp: boolean;
  peer: WorkloadIdentity | undefined;
  source: Uint8Array | undefined;
  remote: Uint8Array | undefined;
  destination: Uint8Array | undefined;
  path: string | undefined;
}

function requestContext(req: AuthzRequest): Ctx {
  const q = req.http?.path.indexOf('?') ?? -1;
  return {
    req,
    tcp: req.http === undefined,
    peer: req.principal ? parseSpiffeId(req.principal) : undefined,
    source: ipBytes(req.sourceIp),
    remote: ipBytes(req.remoteIp ?? req.sourceIp),
    destination: req.destinationIp === undefined ? undefined : ipBytes(req.destinationIp),
    path: req.http ? (q >= 0 ? req.http.path.slice(0, q) : req.http.path) : undefined,
  };
}

/** One attribute with its values (any must match) and notValues (none may match). */
interface Field {
  key: string;
  availability: Availability;
  values: Array<(ctx: Ctx) => boolean>;
  notValues: Array<(ctx: Ctx) => boolean>;
}

interface CompiledRule {
  from: Field[][];
  to: Field[][];
  when: Field[];
  /** Some field needs HTTP attributes. */
  http: boolean;
  /** Some field is one Weft cannot evaluate. */
  never: boolean;
}

interface CompiledPolicy {
  ref: string;
  namespace: string;
  name: string;
  action: 'ALLOW' | 'DENY' | 'AUDIT';
  dryRun: boolean;
  rules: CompiledRule[];
}

function compilePolicy(policy: AuthzPolicy, notes: string[]): CompiledPolicy {
  const name = ref(policy);
  const action = policy.spec.action ?? 'ALLOW';
  if (action === 'CUSTOM') {
    throw new AuthzConfigError(name, 'the CUSTOM action (external authorization) is not supported by Weft; use ALLOW or DENY');
  }
  if (action !== 'ALLOW' && action !== 'DENY' && action !== 'AUDIT') throw new AuthzConfigError(name, `unknown action ${JSON.stringify(action)}`);
  const fail = (msg: string): never => {
    throw new AuthzConfigError(name, msg);
  };
  const rules = (policy.spec.rules ?? []).map((r, i): CompiledRule => {
    const at = `rules[${i}]`;
    const from = (r?.from ?? []).map((f, j) => sourceFields(f?.source ?? {}, policy.namespace, `${at}.from[${j}].source`, fail));
    const to = (r?.to ?? []).map((t, j) => operationFields(t?.operation ?? {}, `${at}.to[${j}].operation`, fail));
    const when = (r?.when ?? []).map((c, j) => conditionField(c, policy.namespace, `${at}.when[${j}]`, fail));
    const all = [...from.flat(), ...to.flat(), ...when];
    for (const f of all) {
      if (f.availability === 'never') notes.push(`${name} ${at}: Weft cannot evaluate ${f.key}; the rule never matches if ALLOW, and the condition is ignored if DENY or AUDIT`);
    }
    return { from, to, when, http: all.some((f) => f.availability === 'http'), never: all.some((f) => f.availability === 'never') };
  });
  return { ref: name, namespace: policy.namespace, name: policy.name, action, dryRun: policy.dryRun === true, rules };
}

type Fail = (message: string) => never;
type Matcher = (ctx: Ctx) => boolean;

function field(key: string, availability: Availability, values: string[] | undefined, notValues: string[] | undefined, make: (v: string) => Matcher): Field | undefined {
  if (!values?.length && !notValues?.length) return undefined;
  return { key, availability, values: (values ?? []).map(make), notValues: (notValues ?? []).map(make) };
}

const defined = <T>(x: T | undefined): x is T => x !== undefined;

function sourceFields(s: AuthzSource, policyNamespace: string, at: string, fail: Fail): Field[] {
  return [
    field('principals', 'any', s.principals, s.notPrincipals, principalMatcher),
    field('requestPrincipals', 'http', s.requestPrincipals, s.notRequestPrincipals, () => () => false),
    field('namespaces', 'any', s.namespaces, s.notNamespaces, (v) => peerPart(v, (id) => id.namespace)),
    field('serviceAccounts', 'any', s.serviceAccounts, s.notServiceAccounts, (v) => serviceAccountMatcher(v, policyNamespace, `${at}.serviceAccounts`, fail)),
    field('trustDomains', 'any', s.trustDomains, s.notTrustDomains, (v) => peerPart(v, (id) => id.trustDomain)),
    field('ipBlocks', 'any', s.ipBlocks, s.notIpBlocks, (v) => ipMatcher(v, (c) => c.source, `${at}.ipBlocks`, fail)),
    field('remoteIpBlocks', 'any', s.remoteIpBlocks, s.notRemoteIpBlocks, (v) => ipMatcher(v, (c) => c.remote, `${at}.remoteIpBlocks`, fail)),
  ].filter(defined);
}

function operationFields(o: AuthzOperation, at: string, fail: Fail): Field[] {
  return [
    field('hosts', 'http', o.hosts, o.notHosts, (v) => {
      const m = stringMatcher(v.toLowerCase(), '', 'present');
      return (c) => m(c.req.http?.host.toLowerCase());
    }),
    field('ports', 'any', o.ports, o.notPorts, (v) => portMatcher(v, `${at}.ports`, fail)),
    field('methods', 'http', o.methods, o.notMethods, (v) => {
      const m = stringMatcher(v, '', 'present');
      return (c) => m(c.req.http?.method);
    }),
    field('paths', 'http', o.paths, o.notPaths, (v) => pathMatcher(v, `${at}.paths`, fail)),
  ].filter(defined);
}

function conditionField(c: AuthzCondition, policyNamespace: string, at: string, fail: Fail): Field {
  const key = c?.key ?? '';
  const make = (availability: Availability, m: (v: string) => Matcher): Field => {
    if (!c.values?.length && !c.notValues?.length) fail(`${at}: at least one of values or notValues must be set for key ${key}`);
    return field(key, availability, c.values, c.notValues, m)!;
  };
  if (key.startsWith('request.headers')) {
    const name = bracketed(key, 'request.headers', at, fail).toLowerCase();
    return make('http', (v) => headerMatcher(name, v));
  }
  if (key.startsWith('request.auth.claims')) {
    bracketed(key, 'request.auth.claims', at, fail);
    return make('http', () => () => false);
  }
  if (key.startsWith('experimental.envoy.filters.')) return make('never', () => () => false);
  switch (key) {
    case 'source.ip':
      return make('any', (v) => ipMatcher(v, (x) => x.source, at, fail));
    case 'remote.ip':
      return make('any', (v) => ipMatcher(v, (x) => x.remote, at, fail));
    case 'destination.ip':
      return make('any', (v) => ipMatcher(v, (x) => x.destination, at, fail));
    case 'destination.port':
      return make('any', (v) => portMatcher(v, at, fail));
    case 'source.namespace':
      return make('any', (v) => peerPart(v, (id) => id.namespace));
    case 'source.principal':
      return make('any', principalMatcher);
    case 'source.serviceAccount':
      return make('any', (v) => serviceAccountMatcher(v, policyNamespace, at, fail));
    case 'source.trustDomain':
      return make('any', (v) => peerPart(v, (id) => id.trustDomain));
    case 'connection.sni': {
      return make('any', (v) => {
        const m = stringMatcher(v, '', 'nonEmpty');
        return (x) => m(x.req.sni);
      });
    }
    case 'request.auth.principal':
    case 'request.auth.audiences':
    case 'request.auth.presenter':
      return make('http', () => () => false);
    default:
      return fail(`${at}.key: unknown attribute ${JSON.stringify(key)}`);
  }
}

function bracketed(key: string, prefix: string, at: string, fail: Fail): string {
  const inner = key.slice(prefix.length);
  if (!inner.startsWith('[') || !inner.endsWith(']') || inner.length < 3) fail(`${at}.key: bad key (${key}): should have format a[b]`);
  return inner.slice(1, -1);
}

// ---- Matchers ----

/**
 * Istio's string forms. `*` is `nonEmpty` (Envoy regex `.+`) or `present` (header present_match);
 * `prefix` is prepended to the pattern, as Istio prepends `spiffe://` to principals.
 */
function stringMatcher(pattern: string, prefix: string, star: 'nonEmpty' | 'present'): (value: string | undefined) => boolean {
  if (pattern === '*') return star === 'present' ? (v) => v !== undefined : (v) => v !== undefined && v.length > 0;
  if (pattern.startsWith('*')) {
    const suffix = pattern.slice(1);
    return (v) => v !== undefined && v.startsWith(prefix) && v.length - prefix.length >= suffix.length && v.endsWith(suffix);
  }
  if (pattern.endsWith('*')) {
    const start = prefix + pattern.slice(0, -1);
    return (v) => v !== undefined && v.startsWith(start);
  }
  const exact = prefix + pattern;
  return (v) => v === exact;
}

function principalMatcher(pattern: string): Matcher {
  const m = stringMatcher(pattern, SPIFFE_PREFIX, 'nonEmpty');
  return (c) => m(c.req.principal || undefined);
}

/** Namespaces and trust domains: compared with the part of the peer's verified SPIFFE ID. */
function peerPart(pattern: string, part: (id: WorkloadIdentity) => string): Matcher {
  const m = stringMatcher(pattern, '', 'nonEmpty');
  return (c) => m(c.peer ? part(c.peer) : undefined);
}

/** `namespace/serviceAccount`, or `serviceAccount` in the policy's own namespace; no wildcards. */
function serviceAccountMatcher(value: string, policyNamespace: string, at: string, fail: Fail): Matcher {
  const parts = value.split('/');
  if (value.includes('*') || parts.length > 2 || parts.some((p) => p === '')) {
    fail(`${at}: expected 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(value)}`);
  }
  const [ns, sa] = parts.length === 2 ? [parts[0]!, parts[1]!] : [policyNamespace, parts[0]!];
  return (c) => c.peer !== undefined && c.peer.namespace === ns && c.peer.serviceAccount === sa;
}

function ipMatcher(value: string, address: (c: Ctx) => Uint8Array | undefined, at: string, fail: Fail): Matcher {
  const block: CidrBlock | undefined = parseCidr(value);
  if (!block) return fail(`${at}: ${JSON.stringify(value)} is not a valid IP address or CIDR block`);
  return (c) => {
    const a = address(c);
    return a !== undefined && cidrContains(block, a);
  };
}

function portMatcher(value: string, at: string, fail: Fail): Matcher {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) fail(`${at}: bad port (${value})`);
  const port = Number(value);
  return (c) => c.req.port === port;
}

function headerMatcher(name: string, pattern: string): Matcher {
  const m = stringMatcher(pattern, '', 'present');
  return (c) => {
    const raw = headerValue(c, name);
    if (raw === undefined) return false;
    if (pattern === '*') return true;
    // Each comma-separated element, and the whole value (a value may itself contain commas).
    return m(raw) || raw.split(',').some((element) => m(element.trim()));
  };
}

function headerValue(c: Ctx, name: string): string | undefined {
  const http = c.req.http;
  if (!http) return undefined;
  if (name === ':authority' || name === 'host') return http.headers[name] === undefined ? http.host : joinHeader(http.headers[name]);
  if (name === ':method') return http.method;
  if (name === ':path') return http.path;
  return joinHeader(http.headers[name]);
}

function joinHeader(v: string | readonly string[] | undefined): string | undefined {
  return typeof v === 'string' || v === undefined ? v : v.join(',');
}

// Envoy's URI template character classes (source/extensions/path/uri_template_lib).
const TEMPLATE_LITERAL = /^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/;
const PATH_GLOB = "[a-zA-Z0-9\\-._~%!$&'()+,;:@]+";
const TEXT_GLOB = "[a-zA-Z0-9\\-._~%!$&'()+,;:@/]*";

function pathMatcher(value: string, at: string, fail: Fail): Matcher {
  if (value.includes('{*}') || value.includes('{**}')) {
    const re = pathTemplate(value, at, fail);
    return (c) => c.path !== undefined && re.test(c.path);
  }
  const m = stringMatcher(value, '', 'nonEmpty');
  return (c) => m(c.path);
}

/** `{*}` one segment, `{**}` the rest; compiled to an anchored RegExp with no backtracking hazards. */
export function pathTemplate(template: string, at = 'path', fail: Fail = (m) => { throw new Error(m); }): RegExp {
  if (!template.startsWith('/')) fail(`${at}: invalid path template ${template}: must start with "/"`);
  let sawTextGlob = false;
  const segments = template.slice(1).split('/').map((segment, i, all) => {
    if (segment === '{*}' || segment === '{**}') {
      if (sawTextGlob) fail(`${at}: invalid path template ${template}: {**} must be the last operator`);
      sawTextGlob = segment === '{**}';
      return sawTextGlob ? TEXT_GLOB : PATH_GLOB;
    }
    if (segment === '' && i === all.length - 1) return ''; // trailing slash
    if (!TEMPLATE_LITERAL.test(segment)) fail(`${at}: invalid path template ${template}: segment ${JSON.stringify(segment)} is not a valid literal`);
    return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  });
  return new RegExp(`^/${segments.join('/')}$`);
}

/** The first matching rule's index, or -1. Decides TCP handling per action (see the module comment). */
function matchingRule(policy: CompiledPolicy, ctx: Ctx): number {
  for (let i = 0; i < policy.rules.length; i++) if (ruleMatches(policy.rules[i]!, policy.action, ctx)) return i;
  return -1;
}

function ruleMatches(rule: CompiledRule, action: 'ALLOW' | 'DENY' | 'AUDIT', ctx: Ctx): boolean {
  // A missing attribute anywhere in an ALLOW rule voids the whole rule (Istio skips generating it);
  // in a DENY or AUDIT rule only that attribute is dropped, so the rule matches more.
  if (action === 'ALLOW' && (rule.never || (rule.http && ctx.tcp))) return false;
  const fieldMatches = (f: Field): boolean => {
    if (f.availability === 'never' || (f.availability === 'http' && ctx.tcp)) return true;
    if (f.values.length > 0 && !f.values.some((m) => m(ctx))) return false;
    return !f.notValues.some((m) => m(ctx));
  };
  const entry = (fields: Field[]) => fields.every(fieldMatches);
  const any = (entries: Field[][]) => entries.length === 0 || entries.some(entry);
  return any(rule.from) && any(rule.to) && rule.when.every(fieldMatches);
}
