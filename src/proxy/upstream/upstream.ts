// Upstream: what the proxy asks of a connection pool to one address, whatever the protocol.
//
// undici's Pool (HTTP/1.1) fits it as it is; H2Upstream (HTTP/2) and AlpnUpstream (TLS, either)
// implement it. A request resolves at the response headers; the body streams after.

import type { Readable } from 'node:stream';

export interface UpstreamRequest {
  path: string;
  method: string;
  /** Lowercase names; `host` is the authority. */
  headers: Record<string, string | string[]>;
  body?: Readable;
  /** Aborts the request: before the answer it rejects, after it the body fails. */
  signal?: AbortSignal;
}

/**
 * An answer's body: the part of a Readable the proxy uses ('data', 'end', 'error'; a 'data'
 * listener starts the flow unless paused), and `dump()` to drop the rest. A Readable with dump()
 * is one (HTTP/2); dispatch.ts has a lighter one (HTTP/1.1).
 */
export interface UpstreamBody {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'end', listener: () => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  off(event: 'data', listener: (chunk: Buffer) => void): unknown;
  off(event: 'end', listener: () => void): unknown;
  off(event: 'error', listener: (err: Error) => void): unknown;
  pause(): unknown;
  resume(): unknown;
  readonly readableFlowing: boolean | null;
  /** Stop: the upstream request is aborted if the answer is not whole yet; nothing more is emitted. */
  destroy(): unknown;
  dump(): Promise<unknown>;
  [Symbol.asyncIterator](): AsyncIterator<Buffer>;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** Ends only when the upstream ended the answer cleanly; an upstream cut makes it fail. */
  body: UpstreamBody;
  /** Filled in by the time the body ends. */
  trailers: Record<string, string | string[] | undefined>;
  /** HTTP/2: the answer was one HEADERS frame that ended the stream (gRPC's trailers-only form). */
  trailersOnly?: boolean;
}

export interface Upstream {
  request(r: UpstreamRequest): Promise<UpstreamResponse>;
  /** Graceful: requests in flight finish. */
  close(): Promise<void>;
}
