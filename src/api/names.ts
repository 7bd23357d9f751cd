// Name rules shared by the kinds: DNS labels and domains, Kubernetes labels, HTTP header names and values.
// Each check returns a problem description, or undefined when the value is fine.

// Istio's DNS-1123 label accepts upper case (Kubernetes' does not); used where Istio validates.
const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
// A first label may be `*`, or start with `*` / `*-` followed by a label (`*.foo.com`, `*bar.com`).
const WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;

export function isDNS1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

function isWildcardDNS1123Label(value: string): boolean {
  return value.length <= 63 && WILDCARD_LABEL.test(value);
}

function checkDomainPreconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name "${name}" too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

function checkDNS1123Labels(domain: string): string | undefined {
  const parts = domain.split('.');
  const tld = parts[parts.length - 1]!;
  if (/^[+-]?\d+$/.test(tld)) return `domain name "${domain}" invalid (top level domain "${tld}" cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    // A trailing dot (`istio.io.`) is an unambiguous absolute name and is allowed.
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDNS1123Label(label)) return `domain name "${domain}" invalid (label "${label}" invalid)`;
  }
  return undefined;
}

/** A DNS name such as `reviews` or `reviews.default.svc.cluster.local` (short names are fine). */
export function checkFQDN(name: string): string | undefined {
  return checkDomainPreconditions(name) ?? checkDNS1123Labels(name);
}

/** A DNS name whose first label may be a wildcard: `*.example.com`, `*`. */
export function checkWildcardDomain(name: string): string | undefined {
  const pre = checkDomainPreconditions(name);
  if (pre) return pre;
  const dot = name.indexOf('.');
  const first = dot < 0 ? name : name.slice(0, dot);
  if (!isWildcardDNS1123Label(first)) return `domain name "${name}" invalid (label "${first}" invalid)`;
  return dot < 0 ? undefined : checkDNS1123Labels(name.slice(dot + 1));
}

/** Istio warns about `foo*.com`-style partial wildcards: only `*` or a leading `*.` is meaningful. */
export function isPartialWildcard(host: string): boolean {
  return host.includes('*') && host !== '*' && !host.startsWith('*.');
}

// ---- Kubernetes object names and labels ------------------------------------------------------

const K8S_LABEL = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/;
const K8S_SUBDOMAIN = /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*$/;
const K8S_1035_LABEL = /^[a-z](?:[-a-z0-9]*[a-z0-9])?$/;

/** metadata.name of most kinds: a lowercase DNS-1123 subdomain. */
export function checkObjectName(name: string): string | undefined {
  if (name.length > 253 || !K8S_SUBDOMAIN.test(name)) {
    return `"${name}" is not a valid name: use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** metadata.namespace, and Service names: a lowercase DNS-1123 label (Service: DNS-1035, no leading digit). */
export function checkNamespaceName(name: string): string | undefined {
  if (name.length > 63 || !K8S_LABEL.test(name)) {
    return `"${name}" is not a valid namespace: use at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  return undefined;
}

export function checkServiceName(name: string): string | undefined {
  if (name.length > 63 || !K8S_1035_LABEL.test(name)) {
    return `"${name}" is not a valid Service name: use at most 63 lowercase letters, digits and '-', starting with a letter`;
  }
  return undefined;
}

const LABEL_NAME = /^(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label key: `[prefix/]name` where prefix is a DNS subdomain (≤253) and name ≤63 characters. */
export function checkLabelKey(key: string): string | undefined {
  const slash = key.lastIndexOf('/');
  const prefix = slash < 0 ? '' : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0 && (prefix.length > 253 || !/^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*$/.test(prefix))) {
    return `invalid label key "${key}" (bad DNS prefix)`;
  }
  if (!LABEL_NAME.test(name)) return `invalid label key "${key}"`;
  if (name.length > 63) return `invalid label key "${key}" (name is too long)`;
  return undefined;
}

/** A label value: empty, or ≤63 of letters, digits, '-', '_', '.' starting and ending alphanumeric. */
export function checkLabelValue(value: string): string | undefined {
  if (value.length > 63 || !LABEL_VALUE.test(value)) return `invalid label value "${value}"`;
  return undefined;
}

// ---- HTTP headers --------------------------------------------------------------------------

// RFC 7230 token characters.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~A-Za-z0-9]+$/;
const PSEUDO_HEADERS = new Set([':method', ':scheme', ':authority', ':path', ':status']);
const JWT_CLAIM_PREFIX = '@request.auth.claims';

/** `@request.auth.claims.sub` / `@request.auth.claims[sub]`: routing on a JWT claim (gateways only). */
export function isJwtClaimHeader(name: string): boolean {
  if (!name.toLowerCase().startsWith(JWT_CLAIM_PREFIX)) return false;
  const rest = name.slice(JWT_CLAIM_PREFIX.length);
  return (rest.startsWith('.') && rest.length > 1) || (rest.startsWith('[') && rest.endsWith(']') && rest.length > 2);
}

/** A header name in a match (`headers`, `withoutHeaders`): a token, a pseudo-header or a JWT claim. */
export function checkMatchHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isJwtClaimHeader(name) || PSEUDO_HEADERS.has(name)) return undefined;
  if (!HEADER_NAME.test(name)) return `header name "${name}" is not a valid header name`;
  return undefined;
}

export function checkTokenHeaderName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name === '*') return undefined;
  if (!HEADER_NAME.test(name)) return `header name "${name}" is not a valid header name`;
  return undefined;
}

function isInternalHeader(name: string): boolean {
  return name.startsWith(':') || name.toLowerCase() === 'host';
}

export function isAuthorityHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return lower === ':authority' || lower === 'host';
}

/** A header set or added on the request: the authority may be rewritten, other pseudo-headers not. */
export function checkRequestHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (isInternalHeader(name) && !isAuthorityHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

/** A header removed from the request, or changed on the response: no Host, no pseudo-headers. */
export function checkHeaderOperationName(name: string): string | undefined {
  if (name === '') return 'header name cannot be empty';
  if (name.toLowerCase() === 'host') return `invalid header "${name}": cannot set Host header`;
  if (isInternalHeader(name)) return `invalid header "${name}": header cannot have ":" prefix`;
  return undefined;
}

/**
 * A header value Envoy will accept: no control characters, and `%` either doubled (`100%%`) or
 * opening a `%VARIABLE%` / `%VARIABLE(args)%` command that is closed again.
 */
export function checkHeaderValue(value: string): string | undefined {
  // Control characters other than horizontal tab are not allowed in header values.
  if (/[\u0000-\u0008\u000A-\u001F\u007F]/.test(value)) return `header value "${value}" contains control characters`;
  let i = 0;
  while (i < value.length) {
    if (value[i] !== '%') {
      i++;
      continue;
    }
    if (value[i + 1] === '%') {
      i += 2;
      continue;
    }
    // A command: scan to the closing `%`, skipping over a parenthesised, possibly quoted argument list.
    let j = i + 1;
    let depth = 0;
    let quoted = false;
    for (; j < value.length; j++) {
      const c = value[j];
      if (quoted) {
        if (c === '\\') j++;
        else if (c === '"') quoted = false;
      } else if (c === '"' && depth > 0) quoted = true;
      else if (c === '(') depth++;
      else if (c === ')') depth = Math.max(0, depth - 1);
      else if (c === '%' && depth === 0) break;
    }
    if (j >= value.length) {
      return `header value "${value}" has an unterminated %VARIABLE% (write %% for a literal percent sign)`;
    }
    i = j + 1;
  }
  return undefined;
}
