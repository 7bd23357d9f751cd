// Route matching: a pure find() over a frozen virtual host's routes — first match wins.

import type { MatchConfig, RouteConfig } from '../../wire/snapshot.ts';
import { compileStringMatch, type StringPredicate } from './string-match.ts';

/** What matching may look at: the parts of a request Istio's HTTPMatchRequest names. */
export interface RequestView {
  method: string;
  /** Path without the query string. */
  path: string;
  /** Raw query string without the `?` ('' when none). */
  query: string;
  scheme: string;
  authority: string;
  /** The port the request was addressed to. */
  port: number;
  header(name: string): string | undefined;
}

export type RequestPredicate = (req: RequestView) => boolean;

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly matches: (req: RequestView) => boolean;
  /** Index of the first match item that succeeds; 0 for a route without items; -1 for none. */
  readonly matchIndex: (req: RequestView) => number;
}

export function compileRoute(config: RouteConfig): CompiledRoute {
  // match[] items are OR-ed; no items means the route matches everything.
  const items = config.match.map(compileMatch);
  const matchIndex =
    items.length === 0
      ? () => 0
      : (req: RequestView) => {
          for (let i = 0; i < items.length; i++) if (items[i](req)) return i;
          return -1;
        };
  const matches: RequestPredicate =
    items.length === 0 ? () => true : items.length === 1 ? items[0] : (req) => items.some((p) => p(req));
  return Object.freeze({ config, matches, matchIndex });
}

/** The first route whose match succeeds, or undefined (the caller answers 404 `NR`). */
export function findRoute<R extends CompiledRoute>(routes: readonly R[], req: RequestView): R | undefined {
  for (const r of routes) if (r.matches(req)) return r;
  return undefined;
}

/** Like findRoute, and which match item succeeded (a prefix rewrite needs the matched prefix). */
export function findRouteMatch<R extends CompiledRoute>(
  routes: readonly R[],
  req: RequestView,
): { route: R; item: MatchConfig | undefined } | undefined {
  const candidates = routes.length > INDEX_FROM ? routeIndex(routes).candidates(req.path) : undefined;
  if (!candidates) {
    for (const r of routes) {
      const i = r.matchIndex(req);
      if (i >= 0) return { route: r, item: r.config.match[i] };
    }
    return undefined;
  }
  for (const n of candidates) {
    const r = routes[n];
    const i = r.matchIndex(req);
    if (i >= 0) return { route: r, item: r.config.match[i] };
  }
  return undefined;
}

/** Below this many routes a plain scan is as fast as any index. */
const INDEX_FROM = 16;

/**
 * Which routes could match a path, in table order, without testing every route: a route whose
 * every match item pins the path (case-sensitive exact or prefix) is only a candidate when the
 * path equals or starts with one of them; any other route is always a candidate. First-match
 * order is kept by merging candidate positions in ascending order.
 */
interface RouteIndex {
  candidates(path: string): number[];
}

const indexes = new WeakMap<readonly CompiledRoute[], RouteIndex>();

function routeIndex(routes: readonly CompiledRoute[]): RouteIndex {
  let idx = indexes.get(routes);
  if (idx) return idx;
  const always: number[] = [];
  const exact = new Map<string, number[]>();
  const prefix = new Map<string, number[]>();
  const add = (m: Map<string, number[]>, k: string, n: number) => {
    const list = m.get(k);
    if (!list) m.set(k, [n]);
    else if (list[list.length - 1] !== n) list.push(n);
  };
  routes.forEach((r, n) => {
    const items = r.config.match;
    const pinned = items.length > 0 && items.every((m) => m.uri && !m.ignoreUriCase && ('exact' in m.uri || 'prefix' in m.uri));
    if (!pinned) return always.push(n);
    for (const m of items) {
      const u = m.uri!;
      if ('exact' in u) add(exact, u.exact, n);
      else if ('prefix' in u) add(prefix, u.prefix, n);
    }
  });
  const lengths = [...new Set([...prefix.keys()].map((k) => k.length))].sort((a, b) => a - b);
  idx = {
    candidates(path) {
      const lists: number[][] = [always];
      const e = exact.get(path);
      if (e) lists.push(e);
      for (const len of lengths) {
        if (len > path.length) break;
        const p = prefix.get(path.slice(0, len));
        if (p) lists.push(p);
      }
      if (lists.length === 1) return always;
      return [...new Set(lists.flat())].sort((a, b) => a - b);
    },
  };
  indexes.set(routes, idx);
  return idx;
}

/** The fields of one HTTPMatchRequest are AND-ed. */
export function compileMatch(m: MatchConfig): RequestPredicate {
  const checks: RequestPredicate[] = [];
  if (m.uri) {
    const p = compileStringMatch(m.uri, m.ignoreUriCase === true);
    checks.push((r) => p(r.path));
  }
  if (m.method) {
    const p = compileStringMatch(m.method);
    checks.push((r) => p(r.method));
  }
  if (m.scheme) {
    const p = compileStringMatch(m.scheme);
    checks.push((r) => p(r.scheme));
  }
  if (m.authority) {
    const p = compileStringMatch(m.authority);
    checks.push((r) => p(r.authority));
  }
  if (m.port !== undefined) {
    const port = m.port;
    checks.push((r) => r.port === port);
  }
  for (const h of m.headers ?? []) {
    const p: StringPredicate | undefined = h.match && compileStringMatch(h.match);
    const name = h.name;
    checks.push(p ? (r) => { const v = r.header(name); return v !== undefined && p(v); } : (r) => r.header(name) !== undefined);
  }
  for (const h of m.withoutHeaders ?? []) {
    // withoutHeaders: the request matches when the header is absent or does not match.
    const p: StringPredicate | undefined = h.match && compileStringMatch(h.match);
    const name = h.name;
    checks.push(p ? (r) => { const v = r.header(name); return v === undefined || !p(v); } : (r) => r.header(name) === undefined);
  }
  for (const q of m.queryParams ?? []) {
    const p: StringPredicate | undefined = q.match && compileStringMatch(q.match);
    const name = q.name;
    checks.push((r) => {
      const v = queryParam(r.query, name);
      return v !== undefined && (p ? p(v) : true);
    });
  }
  if (checks.length === 1) return checks[0];
  return (req) => {
    for (const c of checks) if (!c(req)) return false;
    return true;
  };
}

function queryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  const v = new URLSearchParams(query).get(name);
  return v ?? undefined;
}
