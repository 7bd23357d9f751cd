// The context a kind's semantic rules run in, and the Istio rules several kinds share.
import type { Destination, SourcePos, StringMatch } from './types.ts';
import { Codes } from './diagnostics.ts';
import { joinPath } from './paths.ts';
import { checkRe2 } from '../core/re2.ts';
import { checkFQDN, checkWildcardDomain, isDNS1123Label } from './names.ts';
import { checkIPSubnet, checkPort } from './net.ts';

/**
 * Handed to a kind's rules after its schema has been checked. Rules name fields by path
 * (`spec.http[0].route`); the position is looked up in the document.
 */
export interface RuleContext {
  readonly name: string;
  readonly namespace: string;
  /** The file the resource came from (as given to the loader). */
  readonly file: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** Reports an error; the code defaults to INVALID_VALUE. */
  error(path: string, text: string, code?: string): void;
  warn(path: string, code: string, text: string): void;
  posOf(path: string): SourcePos;
}

/** Iterates a checked list, skipping the holes left by items that failed their schema. */
export function* items<T>(list: ReadonlyArray<T | undefined> | undefined, path: string): Generator<[T, string, number]> {
  if (!list) return;
  for (let i = 0; i < list.length; i++) {
    const item = list[i];
    if (item !== undefined && item !== null) yield [item, joinPath(path, i), i];
  }
}

export function entries<T>(map: Readonly<Record<string, T>> | undefined, path: string): Array<[string, T, string]> {
  if (!map) return [];
  return Object.entries(map).map(([k, v]) => [k, v, joinPath(path, k)]);
}

/** A regex inside a StringMatch or rewrite: RE2 syntax, which Weft must also be able to run. */
export function checkRegexAt(ctx: RuleContext, path: string, regex: string): void {
  if (regex === '') {
    ctx.error(path, 'regex string match should not be empty');
    return;
  }
  const problem = checkRe2(regex);
  if (problem) ctx.error(path, `invalid regex ${JSON.stringify(regex)}: ${problem} (Istio uses RE2 syntax, https://github.com/google/re2/wiki/Syntax)`);
}

/**
 * Istio's StringMatch rule: a regex must be valid RE2; an empty prefix is allowed for `uri`
 * (Envoy allows it there) but not for headers, scheme, method or authority.
 */
export function checkStringMatch(ctx: RuleContext, path: string, match: StringMatch | Record<string, never> | undefined, allowEmptyPrefix: boolean): void {
  if (!match) return;
  const m: { exact?: string; prefix?: string; regex?: string } = match;
  if (m.prefix !== undefined && m.prefix === '' && !allowEmptyPrefix) ctx.error(joinPath(path, 'prefix'), 'prefix string match should not be empty');
  if (m.regex !== undefined) checkRegexAt(ctx, joinPath(path, 'regex'), m.regex);
}

/** Istio's rule for a route or mirror destination. */
export function checkDestination(ctx: RuleContext, path: string, dest: Destination | undefined): void {
  if (!dest) return;
  if (dest.host !== undefined) {
    const problem = dest.host === '*' ? 'invalid destination host *' : checkWildcardDomain(dest.host);
    if (problem) ctx.error(joinPath(path, 'host'), problem);
  }
  if (dest.subset !== undefined) {
    if (dest.subset === '') ctx.error(joinPath(path, 'subset'), 'subset name cannot be empty');
    else if (!isDNS1123Label(dest.subset)) ctx.error(joinPath(path, 'subset'), `subset name is invalid: ${dest.subset}`);
  }
}

/** A percentage as Istio's `Percent`: 0, or between 0.0001 and 100. */
export function checkPercentage(ctx: RuleContext, path: string, percentage: { value?: number } | undefined): void {
  const value = percentage?.value;
  if (value === undefined) return;
  if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    ctx.error(joinPath(path, 'value'), `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`);
  }
}

export function checkPortAt(ctx: RuleContext, path: string, port: number | undefined): void {
  if (port === undefined || port === 0) return; // proto3: 0 means unset
  const problem = checkPort(port);
  if (problem) ctx.error(path, problem);
}

export function checkSubnets(ctx: RuleContext, path: string, subnets: ReadonlyArray<string | undefined> | undefined): void {
  for (const [subnet, p] of items(subnets, path)) {
    const problem = checkIPSubnet(subnet);
    if (problem) ctx.error(p, problem);
  }
}

/**
 * `gateways` in a VirtualService or match: `mesh`, `<namespace>/<name>`, or a bare gateway name.
 * The legacy `name.namespace` form still works in Istio but is reported as deprecated.
 */
export function checkGatewayNames(ctx: RuleContext, path: string, gateways: ReadonlyArray<string | undefined> | undefined): void {
  for (const [gateway, p] of items(gateways, path)) {
    const slash = gateway.indexOf('/');
    if (slash < 0) {
      if (gateway.includes('.')) {
        const [name, ns] = gateway.split('.');
        ctx.warn(p, Codes.DEPRECATED, `legacy gateway name format ${JSON.stringify(gateway)}; prefer <namespace>/<name>: "${ns}/${name}"`);
      }
      const problem = checkFQDN(gateway);
      if (problem) ctx.error(p, problem);
      continue;
    }
    const ns = gateway.slice(0, slash);
    const name = gateway.slice(slash + 1);
    if (ns === '' || name === '') ctx.error(p, 'config namespace and gateway name cannot be empty');
    else if (!isDNS1123Label(ns)) ctx.error(p, `invalid value for namespace: ${JSON.stringify(ns)}`);
    else if (!isDNS1123Label(name)) ctx.error(p, `invalid value for gateway name: ${JSON.stringify(name)}`);
  }
}

/**
 * `exportTo`: `.` (this namespace), `*` (all), `~` (none, ServiceEntry only) or namespace names,
 * without duplicates and without mixing `*` or `~` with anything else.
 */
export function checkExportTo(
  ctx: RuleContext,
  path: string,
  exportTo: ReadonlyArray<string | undefined> | undefined,
  opts: { serviceEntry?: boolean; destinationRuleWithSelector?: boolean } = {},
): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  for (const [entry, p] of items(exportTo, path)) {
    const key = entry === '.' ? ctx.namespace : entry;
    if (seen.has(key)) {
      ctx.error(p, key !== entry ? `duplicate entries in exportTo: . and current namespace ${ctx.namespace}` : `duplicate entries in exportTo for entry ${entry}`, Codes.DUPLICATE);
      continue;
    }
    if (entry === '~' && !opts.serviceEntry) {
      ctx.error(p, 'exportTo "~" (export to no one) is only allowed on ServiceEntry');
      continue;
    }
    if (entry !== '*' && entry !== '~' && entry !== '.' && !isDNS1123Label(entry)) {
      ctx.error(p, `invalid exportTo value ${JSON.stringify(entry)}: use ".", "*" or a namespace name`);
      continue;
    }
    seen.add(key);
  }
  if (opts.destinationRuleWithSelector && seen.size > 0) {
    if (!seen.has(ctx.namespace)) ctx.error(path, 'destination rule with workload selector cannot have exportTo beyond current namespace');
    else if (seen.size > 1) ctx.error(path, 'destination rule with workload selector cannot have multiple entries in exportTo');
  }
  if (seen.has('*') && exportTo.length > 1) ctx.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) ctx.error(path, 'cannot export service entry to no one (~) and someone');
}

/**
 * A label selector (`matchLabels`, or ServiceEntry's `labels`): no wildcards, no empty keys; an
 * empty selector selects every workload in the namespace, which Istio warns about.
 */
export function checkSelectorLabels(ctx: RuleContext, path: string, labels: Readonly<Record<string, string>> | undefined, what: string): void {
  if (!labels) return;
  for (const [key, value, p] of entries(labels, path)) {
    if (key === '') ctx.error(p, 'empty key is not supported in selector');
    if (key.includes('*') || value.includes('*')) ctx.error(p, `wildcard is not supported in selector: "${key}=${value}"`);
  }
  if (Object.keys(labels).length === 0) ctx.warn(path, Codes.SUSPICIOUS, `workload selector specified without labels; ${what} will apply to all workloads in the namespace`);
}
