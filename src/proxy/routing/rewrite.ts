// Path and authority rewrites, and redirect locations, as Envoy applies Istio's fields (pure).

import type { MatchConfig, RedirectConfig, RewriteConfig } from '../../wire/snapshot.ts';
import { translateRe2 } from '../../core/re2.ts';

export type PathRewriter = (path: string, matched: MatchConfig | undefined) => string;

/** Compiled once: `uri` replaces the matched prefix (or the whole path); `uriRegex` substitutes. */
export function compileRewrite(r: RewriteConfig | undefined): PathRewriter | undefined {
  if (!r) return undefined;
  if (r.uriRegex) {
    // Envoy's regex_rewrite substitutes every match in the path; RE2's \1 becomes JavaScript's $1.
    const t = translateRe2(r.uriRegex.match);
    if (!t.ok) throw new Error(`uriRegexRewrite.match ${JSON.stringify(r.uriRegex.match)}: ${t.reason}`);
    const re = new RegExp(t.source, 'gu');
    const replacement = r.uriRegex.rewrite.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
    return (path) => path.replace(re, replacement);
  }
  const uri = r.uri;
  if (uri === undefined) return undefined;
  return (path, matched) => {
    const m = matched?.uri;
    if (m && 'prefix' in m) {
      // Envoy's prefix_rewrite: swap the matched prefix, keep the rest.
      const prefixLength = matched?.ignoreUriCase || path.startsWith(m.prefix) ? m.prefix.length : 0;
      return uri + path.slice(prefixLength);
    }
    return uri;
  };
}

/** The Location of a redirect, from the request's scheme, authority, path and query. */
export function redirectLocation(
  r: RedirectConfig,
  req: { scheme: string; authority: string; path: string; query: string },
): string {
  const scheme = r.scheme ?? req.scheme;
  const colon = req.authority.lastIndexOf(':');
  const reqHost = colon > 0 && !req.authority.endsWith(']') ? req.authority.slice(0, colon) : req.authority;
  const reqPort = colon > 0 && !req.authority.endsWith(']') ? req.authority.slice(colon + 1) : '';
  let host = r.authority ?? reqHost;
  let port = '';
  if (r.port !== undefined) port = String(r.port);
  else if (r.derivePort === 'FROM_REQUEST_PORT') port = reqPort;
  else if (r.authority === undefined && r.scheme === undefined) port = reqPort;
  const defaultPort = scheme === 'https' ? '443' : '80';
  if (port === defaultPort) port = '';
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  const path = r.uri ?? req.path;
  return `${scheme}://${host}${port ? `:${port}` : ''}${path}${req.query ? `?${req.query}` : ''}`;
}
