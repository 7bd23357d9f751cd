// The Set-Cookie value the proxy sends when a consistent-hash cookie policy generates the cookie.

import type { HashCookieConfig } from '../../../wire/snapshot.ts';

/**
 * `name=value`, then the attributes in Envoy's order (Http::Utility::makeSetCookieValue):
 * `Max-Age` only when the ttl is at least one second (0 makes a session cookie), `Path` when
 * set, each configured attribute as `; name` or `; name=value`, and always `HttpOnly`. The value
 * is left unquoted (Envoy quotes it, and strips the quotes when it reads it back); the values the
 * proxy generates are hex, so quoting changes nothing a client could see.
 */
export function setCookieValue(cookie: HashCookieConfig, value: string): string {
  let out = `${cookie.name}=${value}`;
  const ttl = Math.trunc(cookie.ttlSeconds ?? 0);
  if (ttl > 0) out += `; Max-Age=${ttl}`;
  if (cookie.path) out += `; Path=${cookie.path}`;
  for (const a of cookie.attributes ?? []) out += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
  return `${out}; HttpOnly`;
}
