// Delegate VirtualServices: a root route hands a slice of its traffic to another team's routes.
//
// As in Istio, one level deep: a root route with `delegate` is replaced by the delegate's routes,
// each with its matches merged into the root route's. A merged match narrows the root's: a child
// field the root also sets must agree with it (a uri inside the root's prefix, the same header
// value), or that combination is dropped, since it could never be reached through the root.

import type { HTTPMatchRequest, StringMatch } from '../api/types.ts';

/** Every root × child combination that can match, merged; undefined entries were conflicts. */
export function mergeMatches(root: HTTPMatchRequest[] | undefined, child: HTTPMatchRequest[] | undefined): HTTPMatchRequest[] {
  const r = root && root.length > 0 ? root : [{}];
  const c = child && child.length > 0 ? child : [{}];
  const out: HTTPMatchRequest[] = [];
  for (const a of r) for (const b of c) {
    const m = mergeMatch(a, b);
    if (m) out.push(m);
  }
  return out;
}

function mergeMatch(root: HTTPMatchRequest, child: HTTPMatchRequest): HTTPMatchRequest | undefined {
  const out: HTTPMatchRequest = { ...root };
  if (child.uri) {
    if (root.uri && !uriWithin(child.uri, root.uri)) return undefined;
    out.uri = child.uri;
  }
  for (const f of ['scheme', 'method', 'authority'] as const) {
    const cv = child[f];
    if (!cv) continue;
    if (root[f] && JSON.stringify(root[f]) !== JSON.stringify(cv)) return undefined;
    out[f] = cv;
  }
  if (child.port !== undefined) {
    if (root.port !== undefined && root.port !== child.port) return undefined;
    out.port = child.port;
  }
  for (const f of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    const cv = child[f];
    if (!cv) continue;
    const merged = { ...root[f] };
    for (const [k, v] of Object.entries(cv)) {
      if (merged[k] !== undefined && JSON.stringify(merged[k]) !== JSON.stringify(v)) return undefined;
      merged[k] = v;
    }
    out[f] = merged;
  }
  if (child.ignoreUriCase !== undefined) out.ignoreUriCase = child.ignoreUriCase;
  if (child.name) out.name = root.name ? `${root.name}.${child.name}` : child.name;
  return out;
}

/** Is every path the child's uri matches also matched by the root's? */
function uriWithin(child: StringMatch, root: StringMatch): boolean {
  if ('prefix' in root) {
    if ('prefix' in child) return child.prefix.startsWith(root.prefix);
    if ('exact' in child) return child.exact.startsWith(root.prefix);
    return false;
  }
  if ('exact' in root) return 'exact' in child && child.exact === root.exact;
  return JSON.stringify(child) === JSON.stringify(root);
}
