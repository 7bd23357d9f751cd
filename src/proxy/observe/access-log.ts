// Access log: one JSON line per request, with Envoy-style response flags.

import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import { monotonicMs } from '../../core/clock.ts';

export interface AccessLog {
  write(
    req: IncomingMessage,
    target: { authority: string; pathAndQuery: string },
    status: number,
    flags: string,
    route: string | undefined,
    upstream: string | undefined,
    startMs: number,
    /** What a FallbackPolicy answered with (cache, route, static), when it did. */
    fallback?: string,
  ): void;
}

export function jsonAccessLog(out: Writable, proxyId: string): AccessLog {
  return {
    write(req, target, status, flags, route, upstream, startMs, fallback) {
      out.write(
        JSON.stringify({
          time: new Date().toISOString(),
          proxy: proxyId,
          method: req.method,
          authority: target.authority,
          path: target.pathAndQuery,
          status,
          response_flags: flags,
          route: route ?? null,
          upstream: upstream ?? null,
          fallback: fallback ?? null,
          duration_ms: Math.round((monotonicMs() - startMs) * 1000) / 1000,
          request_id: req.headers['x-request-id'] ?? null,
        }) + '\n',
      );
    },
  };
}
