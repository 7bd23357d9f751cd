// CORS as Envoy's filter applies Istio's corsPolicy: preflights answered, simple requests annotated (pure).

import type { CorsConfig } from '../../wire/snapshot.ts';
import { compileStringMatch } from './string-match.ts';

export interface CompiledCors {
  /** The response to a preflight (status 200 + headers), or undefined to forward it. */
  preflight(origin: string | undefined, requestMethod: string | undefined): Record<string, string> | undefined;
  /** Headers to add to an actual response for this origin (empty when it is not allowed). */
  responseHeaders(origin: string | undefined): Record<string, string>;
}

export function compileCors(c: CorsConfig | undefined): CompiledCors | undefined {
  if (!c) return undefined;
  const origins = c.allowOrigins.map((m) => compileStringMatch(m));
  const allowed = (origin: string | undefined) => origin !== undefined && origins.some((p) => p(origin));
  const common = (origin: string): Record<string, string> => ({
    'access-control-allow-origin': origin,
    ...(c.allowCredentials ? { 'access-control-allow-credentials': 'true' } : {}),
  });
  return {
    preflight(origin, requestMethod) {
      if (!allowed(origin) || requestMethod === undefined) return undefined;
      return {
        ...common(origin!),
        ...(c.allowMethods.length ? { 'access-control-allow-methods': c.allowMethods.join(',') } : {}),
        ...(c.allowHeaders.length ? { 'access-control-allow-headers': c.allowHeaders.join(',') } : {}),
        ...(c.maxAgeSeconds !== undefined ? { 'access-control-max-age': String(c.maxAgeSeconds) } : {}),
      };
    },
    responseHeaders(origin) {
      if (!allowed(origin)) return {};
      return { ...common(origin!), ...(c.exposeHeaders.length ? { 'access-control-expose-headers': c.exposeHeaders.join(',') } : {}) };
    },
  };
}
