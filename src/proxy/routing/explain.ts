// Explain: why a request does or does not match a route, field by field. Pure.
//
// Nothing here decides matching on its own. The verdict for a route is `compileRoute` (what the
// proxy runs) and the verdict for a match item is `compileMatch`; the per-field verdicts come from
// `compileMatch` too, applied to a match item cut down to that one field. Since a match item is
// the AND of its fields, the fields that fail are exactly why the item fails. This file only adds
// the words: what each field expected and what the request had.

import type { HeaderMatchConfig, MatchConfig, RouteConfig, StringMatchConfig } from '../../wire/snapshot.ts';
import { compileMatch, compileRoute, type RequestPredicate, type RequestView } from './match.ts';

export interface RouteExplanation {
  matched: boolean;
  /** Why the route did not match: one line per failing field of each match item (empty when it matched). */
  reasons: string[];
  /** When it matched: which match item did (`match[0]`), or that the route has no conditions. */
  matchedBy?: string;
}

export interface ExplainOptions {
  /**
   * The number to show for each match item, by position (default: its position). Translation
   * leaves out match items whose sourceLabels/sourceNamespace/gateways select other proxies, so
   * the CLI passes the items' indices in the VirtualService to keep the numbers the user wrote.
   */
  matchIndex?: readonly number[];
}

/** One field of one match item: the proxy's own predicate for it, and how to say why it failed. */
interface FieldCheck {
  test: RequestPredicate;
  why(req: RequestView): string;
}

export function explainRoute(route: RouteConfig, req: RequestView, opts: ExplainOptions = {}): RouteExplanation {
  const matched = compileRoute(route).matches(req);
  const label = (i: number) => `match[${opts.matchIndex?.[i] ?? i}]`;
  if (matched) {
    if (route.match.length === 0) return { matched, reasons: [], matchedBy: 'no conditions (matches every request)' };
    const i = route.match.findIndex((m) => compileMatch(m)(req));
    return { matched, reasons: [], matchedBy: `${label(i)}${conditions(route.match[i])}` };
  }
  const reasons: string[] = [];
  route.match.forEach((m, i) => {
    const failing = fieldChecks(m, label(i)).filter((c) => !c.test(req));
    if (failing.length === 0) reasons.push(`${label(i)}: does not match`); // never, if the field split is exact (tested)
    for (const c of failing) reasons.push(c.why(req));
  });
  return { matched, reasons };
}

/** Per-field explanation of one match item; `matched` is the proxy's verdict for the whole item. */
export function explainMatch(m: MatchConfig, req: RequestView, label = 'match[0]'): { matched: boolean; reasons: string[] } {
  return {
    matched: compileMatch(m)(req),
    reasons: fieldChecks(m, label)
      .filter((c) => !c.test(req))
      .map((c) => c.why(req)),
  };
}

/** A match item split into single-field match items, each compiled by match.ts. */
function fieldChecks(m: MatchConfig, at: string): FieldCheck[] {
  const checks: FieldCheck[] = [];
  if (m.uri) {
    const sm = m.uri;
    const ignoreCase = m.ignoreUriCase === true;
    checks.push({
      test: compileMatch({ uri: sm, ...(ignoreCase ? { ignoreUriCase: true } : {}) }),
      // ignoreUriCase does not apply to regex (string-match.ts), so it is only mentioned for the others.
      why: (r) => `${at}.uri: ${mismatch(sm, r.path)}${ignoreCase && !('regex' in sm) ? ' (ignoring case)' : ''}`,
    });
  }
  for (const field of ['method', 'scheme', 'authority'] as const) {
    const sm = m[field];
    if (sm) checks.push({ test: compileMatch({ [field]: sm }), why: (r) => `${at}.${field}: ${mismatch(sm, r[field])}` });
  }
  if (m.port !== undefined) {
    const port = m.port;
    checks.push({ test: compileMatch({ port }), why: (r) => `${at}.port: ${port} ≠ ${r.port}` });
  }
  for (const h of m.headers ?? []) {
    checks.push({
      test: compileMatch({ headers: [h] }),
      why: (r) => {
        const v = r.header(h.name);
        return v === undefined ? `${at}: header ${h.name} absent` : `${at}.headers[${h.name}]: ${mismatch(h.match!, v)}`;
      },
    });
  }
  for (const h of m.withoutHeaders ?? []) {
    checks.push({
      test: compileMatch({ withoutHeaders: [h] }),
      why: (r) => {
        const v = r.header(h.name) ?? '';
        return h.match
          ? `${at}.withoutHeaders[${h.name}]: ${matchesText(h.match, v)}, and must not`
          : `${at}.withoutHeaders[${h.name}]: header present (${q(v)}), and must be absent`;
      },
    });
  }
  for (const p of m.queryParams ?? []) {
    checks.push({
      test: compileMatch({ queryParams: [p] }),
      why: (r) => {
        const v = queryValue(r.query, p.name);
        return v === undefined ? `${at}: query parameter ${p.name} absent` : `${at}.queryParams[${p.name}]: ${mismatch(p.match!, v)}`;
      },
    });
  }
  return checks;
}

/** `exact "jason" ≠ "alice"`, `prefix "/api" does not match "/v2/x"`, `regex "…" does not match "…"`. */
function mismatch(sm: StringMatchConfig, actual: string): string {
  if ('exact' in sm) return `exact ${q(sm.exact)} ≠ ${q(actual)}`;
  return `${describe(sm)} does not match ${q(actual)}`;
}

/** For withoutHeaders: the value matched what it must not. */
function matchesText(sm: StringMatchConfig, actual: string): string {
  if ('exact' in sm) return `exact ${q(sm.exact)} = ${q(actual)}`;
  return `${describe(sm)} matches ${q(actual)}`;
}

export function describe(sm: StringMatchConfig): string {
  if ('exact' in sm) return `exact ${q(sm.exact)}`;
  if ('prefix' in sm) return `prefix ${q(sm.prefix)}`;
  return `regex ${q(sm.regex)}`;
}

/** Only for the words: the verdict on a query parameter is match.ts's. */
function queryValue(query: string, name: string): string | undefined {
  return query === '' ? undefined : (new URLSearchParams(query).get(name) ?? undefined);
}

const q = (s: string) => JSON.stringify(s);

/** A match item's conditions as written: `: uri prefix "/api", headers[x-user] exact "jason"` ('' for none). */
function conditions(m: MatchConfig): string {
  const parts: string[] = [];
  if (m.uri) parts.push(`uri ${describe(m.uri)}${m.ignoreUriCase && !('regex' in m.uri) ? ' (ignoring case)' : ''}`);
  for (const field of ['method', 'scheme', 'authority'] as const) {
    const sm = m[field];
    if (sm) parts.push(`${field} ${describe(sm)}`);
  }
  if (m.port !== undefined) parts.push(`port ${m.port}`);
  const each = (kind: string, list: HeaderMatchConfig[] | undefined, absent: string) => {
    for (const h of list ?? []) parts.push(`${kind}[${h.name}] ${h.match ? describe(h.match) : absent}`);
  };
  each('headers', m.headers, 'present');
  each('withoutHeaders', m.withoutHeaders, 'absent');
  each('queryParams', m.queryParams, 'present');
  return parts.length ? `: ${parts.join(', ')}` : ' (no conditions)';
}

/**
 * A request as the proxy would see it (pipeline.ts's request view): header names lowercase,
 * `host` / `:authority` answering with the authority.
 */
export function simulatedRequest(r: {
  method: string;
  authority: string;
  port: number;
  path: string;
  query: string;
  scheme?: string;
  headers: Readonly<Record<string, string>>;
}): RequestView {
  const headers = new Map(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method: r.method,
    path: r.path,
    query: r.query,
    scheme: r.scheme ?? 'http',
    authority: r.authority,
    port: r.port,
    header(name) {
      if (name === ':authority' || name === 'host') return r.authority;
      return headers.get(name);
    },
  };
}
