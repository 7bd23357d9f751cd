// AuthorizationPolicy (security.istio.io v1, v1beta1): schema and Istio's rules; enforced by each sidecar's
// inbound side (src/security/authz.ts). The CUSTOM action is valid Istio that Weft refuses (NOT_SUPPORTED).
import type { KindDef } from './kind.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { enumOf, listOf, obj, str, type Schema } from './schema.ts';
import { stringList, targetRef, workloadSelector } from './common.ts';
import { checkSelectorLabels, items, type RuleContext } from './rules.ts';
import { checkIPSubnet } from './net.ts';

const source = obj({
  principals: stringList(),
  notPrincipals: stringList(),
  requestPrincipals: stringList(),
  notRequestPrincipals: stringList(),
  namespaces: stringList(),
  notNamespaces: stringList(),
  serviceAccounts: listOf(str({ maxLength: 320 }), { maxItems: 16 }),
  notServiceAccounts: listOf(str({ maxLength: 320 }), { maxItems: 16 }),
  ipBlocks: stringList(),
  notIpBlocks: stringList(),
  remoteIpBlocks: stringList(),
  notRemoteIpBlocks: stringList(),
  trustDomains: stringList(),
  notTrustDomains: stringList(),
});

const operation = obj({
  hosts: stringList(),
  notHosts: stringList(),
  ports: stringList(),
  notPorts: stringList(),
  methods: stringList(),
  notMethods: stringList(),
  paths: stringList(),
  notPaths: stringList(),
});

const rule = obj({
  from: listOf(obj({ source }), { maxItems: 512 }),
  to: listOf(obj({ operation })),
  when: listOf(obj({ key: str(), values: stringList(), notValues: stringList() }, { required: ['key'] })),
});

const spec: Schema<Record<string, unknown>> = obj({
  selector: workloadSelector(),
  targetRef: targetRef(),
  targetRefs: listOf(targetRef(), { maxItems: 16 }),
  rules: listOf(rule, { maxItems: 512 }),
  action: enumOf(['ALLOW', 'DENY', 'AUDIT', 'CUSTOM']),
  provider: obj({ name: str() }),
});

type AnyRecord = Record<string, any>;
type Values = Array<string | undefined> | undefined;

// The kinds a policy may attach to with targetRef(s): group/kind.
const TARGET_KINDS = new Set(['/Service', 'core/Service', 'networking.istio.io/ServiceEntry', 'gateway.networking.k8s.io/Gateway', 'gateway.networking.k8s.io/GatewayClass']);

const SOURCE_FIELDS = ['principals', 'requestPrincipals', 'namespaces', 'ipBlocks', 'remoteIpBlocks', 'serviceAccounts', 'trustDomains'];
const NOT = (f: string) => `not${f[0]!.toUpperCase()}${f.slice(1)}`;
const ALL_SOURCE_FIELDS = SOURCE_FIELDS.flatMap((f) => [f, NOT(f)]);
const OPERATION_FIELDS = ['ports', 'methods', 'paths', 'hosts'].flatMap((f) => [f, NOT(f)]);

const has = (values: Values) => (values?.length ?? 0) > 0;

function checkNotEmpty(ctx: RuleContext, path: string, values: Values): void {
  for (const [v, p] of items(values, path)) if (v === '') ctx.error(p, 'empty value not allowed');
}

function checkIPs(ctx: RuleContext, path: string, values: Values): void {
  for (const [v, p] of items(values, path)) {
    const problem = checkIPSubnet(v);
    if (problem) ctx.error(p, problem);
  }
}

function checkPorts(ctx: RuleContext, path: string, values: Values): void {
  for (const [v, p] of items(values, path)) {
    if (!/^\d+$/.test(v) || Number(v) > 65535) ctx.error(p, `bad port (${v})`);
  }
}

function checkServiceAccounts(ctx: RuleContext, path: string, values: Values): void {
  for (const [v, p] of items(values, path)) {
    if (v.includes('*')) ctx.error(p, 'wildcard not allowed in service accounts');
    const parts = v.split('/');
    if (parts.length > 2 || parts.some((x) => x === '')) ctx.error(p, `expected format 'serviceAccount' or 'namespace/serviceAccount', found ${JSON.stringify(v)}`);
  }
}

/** At most one `*`, and only at the start or end (`*`, `prefix*`, `*suffix`). */
function checkWildcards(ctx: RuleContext, path: string, values: Values, noSlash = false): void {
  for (const [v, p] of items(values, path)) {
    const stars = v.split('*').length - 1;
    if (stars > 1) ctx.error(p, `at most one wildcard is allowed: ${JSON.stringify(v)}`);
    else if (stars === 1 && v !== '*' && !v.startsWith('*') && !v.endsWith('*')) ctx.error(p, `wildcard is only allowed at the start or end: ${JSON.stringify(v)}`);
    if (noSlash && v.includes('/')) ctx.error(p, `trust domain must not contain '/': ${JSON.stringify(v)}`);
  }
}

/** `{*}` matches one path segment and `{**}` the rest; `{**}` must come last. */
function checkPathTemplates(ctx: RuleContext, path: string, values: Values): void {
  for (const [v, p] of items(values, path)) {
    if (!v.includes('{*}') && !v.includes('{**}')) continue;
    let sawAny = false;
    for (const segment of v.replace(/^\/+|\/+$/g, '').split('/')) {
      if (segment === '{*}' || segment === '{**}') {
        if (sawAny) {
          ctx.error(p, `invalid path template ${v}: {**} must be the last operator`);
          break;
        }
        sawAny = segment === '{**}';
        continue;
      }
      if (/[{}]/.test(segment) || !/^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$/.test(segment)) {
        ctx.error(p, `invalid path template ${v}: segment ${JSON.stringify(segment)} is not a valid literal`);
        break;
      }
    }
  }
}

/** What is wrong with a `when` key, per Istio's attribute list. */
function keyProblem(key: string): string | undefined {
  const mapKey = (prefix: string) => {
    const open = key.indexOf('[');
    return key.startsWith(prefix) && key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `bad key (${key}): should have format a[b]`;
  };
  if (key.startsWith('request.headers')) return mapKey('request.headers');
  if (key.startsWith('request.auth.claims')) return mapKey('request.auth.claims');
  if (key.startsWith('experimental.envoy.filters.')) return mapKey('experimental.envoy.filters.');
  if (key === 'destination.namespace') return `attribute ${key} is replaced by the metadata.namespace`;
  if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
  if (key === 'destination.name' || key === 'destination.user') return `deprecated attribute ${key}: only supported in v1alpha1`;
  const known = [
    'source.ip', 'remote.ip', 'destination.ip', 'destination.port', 'source.serviceAccount', 'source.trustDomain', 'source.namespace',
    'source.principal', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'connection.sni',
  ];
  return known.includes(key) ? undefined : `unknown attribute: ${key}`;
}

/** The values of a `when` condition, checked by what the key compares. */
function checkConditionValues(ctx: RuleContext, path: string, key: string, values: Values): void {
  checkNotEmpty(ctx, path, values);
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') checkIPs(ctx, path, values);
  else if (key === 'source.serviceAccount') checkServiceAccounts(ctx, path, values);
  else if (key === 'source.trustDomain') checkWildcards(ctx, path, values);
  else if (key === 'destination.port') checkPorts(ctx, path, values);
}

function rules(spec: AnyRecord, ctx: RuleContext): void {
  const action: string = spec.action ?? 'ALLOW';
  const selectors = [spec.selector !== undefined, spec.targetRef !== undefined, (spec.targetRefs?.length ?? 0) > 0].filter(Boolean).length;
  if (selectors > 1) ctx.error('spec', 'only one of selector, targetRef or targetRefs can be set', Codes.CONFLICT);
  if (spec.selector) checkSelectorLabels(ctx, 'spec.selector.matchLabels', spec.selector.matchLabels ?? {}, 'this policy');
  const refs: Array<[AnyRecord, string]> = [];
  if (spec.targetRef) refs.push([spec.targetRef, 'spec.targetRef']);
  for (const [ref, p] of items<AnyRecord>(spec.targetRefs, 'spec.targetRefs')) refs.push([ref, p]);
  for (const [ref, p] of refs) {
    if (!TARGET_KINDS.has(`${ref.group ?? ''}/${ref.kind}`)) {
      ctx.error(joinPath(p, 'kind'), `targetRef must be a Service, ServiceEntry, Gateway or GatewayClass, not ${ref.group ?? ''}/${ref.kind}`);
    }
  }

  const ruleList: Array<AnyRecord | undefined> = spec.rules ?? [];
  const noRules = ruleList.length === 0;
  if (action === 'CUSTOM') {
    // Ignoring it would let through what the external authorizer denies: refused, not ignored.
    ctx.error(
      'spec.action',
      'the CUSTOM action (external authorization) is not supported by Weft; a CUSTOM policy cannot be enforced, so it is refused rather than ignored (use ALLOW or DENY)',
      Codes.NOT_SUPPORTED,
    );
    if (noRules) ctx.error('spec.rules', 'CUSTOM action without rules is meaningless as it will never be triggered; add an empty rule {} to trigger it for every request', Codes.REQUIRED);
    else if (!spec.provider?.name) ctx.error('spec.provider.name', 'provider.name must not be empty for the CUSTOM action', Codes.REQUIRED);
    for (const [r, p] of items(ruleList, 'spec.rules')) {
      for (const [from, fp] of items<AnyRecord>(r.from, joinPath(p, 'from'))) {
        for (const f of ['namespaces', 'serviceAccounts', 'trustDomains', 'principals', 'requestPrincipals'].flatMap((x) => [x, NOT(x)])) {
          if (has(from.source?.[f])) ctx.error(joinPath(joinPath(fp, 'source'), f), `${f} is currently not supported with the CUSTOM action`);
        }
      }
      for (const [when, wp] of items<AnyRecord>(r.when, joinPath(p, 'when'))) {
        const k: string = when.key ?? '';
        if (['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(k) || k.startsWith('request.auth.')) {
          ctx.error(joinPath(wp, 'key'), `${k} is currently not supported with the CUSTOM action`);
        }
      }
    }
  }
  if (spec.provider && action !== 'CUSTOM') ctx.error('spec.provider', `provider must not be set with the ${action} action`, Codes.CONFLICT);
  if (action === 'DENY' && noRules) {
    ctx.error('spec.rules', 'DENY action without rules is meaningless as it will never be triggered; add an empty rule {} to trigger it for every request', Codes.REQUIRED);
  }

  for (const [r, p] of items(ruleList, 'spec.rules')) {
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    for (const [from, fp] of items<AnyRecord>(r.from, joinPath(p, 'from'))) {
      const src = from.source as AnyRecord | undefined;
      const sp = joinPath(fp, 'source');
      if (!src) {
        ctx.error(sp, 'from.source must not be empty', Codes.REQUIRED);
        continue;
      }
      fromExists = true;
      if ((has(src.serviceAccounts) || has(src.notServiceAccounts)) && ['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((f) => has(src[f]))) {
        ctx.error(sp, 'cannot set serviceAccounts with namespaces or principals', Codes.CONFLICT);
      }
      if (!ALL_SOURCE_FIELDS.some((f) => has(src[f]))) ctx.error(sp, 'from.source must not be empty', Codes.REQUIRED);
      for (const f of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks']) checkIPs(ctx, joinPath(sp, f), src[f]);
      for (const f of ALL_SOURCE_FIELDS) checkNotEmpty(ctx, joinPath(sp, f), src[f]);
      for (const f of ['serviceAccounts', 'notServiceAccounts']) checkServiceAccounts(ctx, joinPath(sp, f), src[f]);
      for (const f of ['trustDomains', 'notTrustDomains']) checkWildcards(ctx, joinPath(sp, f), src[f], true);
      if (['principals', 'notPrincipals', 'ipBlocks', 'notIpBlocks', 'namespaces', 'notNamespaces', 'remoteIpBlocks', 'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts'].some((f) => src[f] !== undefined)) {
        tcpInFrom = true;
      }
    }
    for (const [to, tp] of items<AnyRecord>(r.to, joinPath(p, 'to'))) {
      const op = to.operation as AnyRecord | undefined;
      const opPath = joinPath(tp, 'operation');
      if (!op) {
        ctx.error(opPath, 'to.operation must not be empty', Codes.REQUIRED);
        continue;
      }
      toExists = true;
      if (!OPERATION_FIELDS.some((f) => has(op[f]))) ctx.error(opPath, 'to.operation must not be empty', Codes.REQUIRED);
      checkPorts(ctx, joinPath(opPath, 'ports'), op.ports);
      checkPorts(ctx, joinPath(opPath, 'notPorts'), op.notPorts);
      for (const f of OPERATION_FIELDS) checkNotEmpty(ctx, joinPath(opPath, f), op[f]);
      checkPathTemplates(ctx, joinPath(opPath, 'paths'), op.paths);
      checkPathTemplates(ctx, joinPath(opPath, 'notPaths'), op.notPaths);
      if (op.ports !== undefined || op.notPorts !== undefined) tcpInTo = true;
    }
    for (const [when, wp] of items<AnyRecord>(r.when, joinPath(p, 'when'))) {
      const key: string = when.key ?? '';
      if (key === '') {
        ctx.error(joinPath(wp, 'key'), 'key must not be empty', Codes.REQUIRED);
        continue;
      }
      if (!has(when.values) && !has(when.notValues)) {
        ctx.error(wp, `at least one of values or notValues must be set for key ${key}`, Codes.REQUIRED);
        continue;
      }
      const problem = keyProblem(key);
      if (problem) ctx.error(joinPath(wp, 'key'), problem);
      checkConditionValues(ctx, joinPath(wp, 'values'), key, when.values);
      checkConditionValues(ctx, joinPath(wp, 'notValues'), key, when.notValues);
    }
    // A DENY rule with only HTTP attributes cannot be evaluated on TCP traffic, so Istio denies it all.
    if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      ctx.warn(p, Codes.SUSPICIOUS, 'this DENY rule uses only HTTP attributes, so it will deny all traffic to TCP ports in its scope; specify the ports explicitly');
    }
  }
}

export const authorizationPolicy: KindDef = {
  group: 'security.istio.io',
  kind: 'AuthorizationPolicy',
  versions: ['v1', 'v1beta1'],
  origin: 'Istio',
  protoNames: true,
  spec,
  rules,
};
