// Upstream: what the proxy asks of a connection pool to one address, whatever the protocol.
//
// H1Upstream (HTTP/1.1), H2Upstream (HTTP/2) and AlpnUpstream (TLS, either) implement it. A
// request resolves at the response headers; the body streams after (or, over HTTP/1.1, is taken
// whole when it is all there already).

import { Readable } from 'node:stream';

export interface UpstreamRequest {
  path: string;
  method: string;
  /** Lowercase names; `host` is the authority. */
  headers: Record<string, string | string[]>;
  body?: Readable;
  /** Aborts the request: before the answer it rejects, after it the body fails. */
  signal?: AbortSignal;
}

export interface UpstreamResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  /** Ends only when the upstream ended the answer cleanly; an upstream cut makes it fail. */
  body: Readable & { dump(): Promise<unknown> };
  /** Filled in by the time the body ends. */
  trailers: Record<string, string | string[] | undefined>;
  /** HTTP/2: the answer was one HEADERS frame that ended the stream (gRPC's trailers-only form). */
  trailersOnly?: boolean;
  /**
   * The whole body, when it had all arrived cleanly before anyone read `body`: taken once (the
   * body is then empty). Undefined while it is still coming, once it was read as a stream, or
   * when the upstream cut it. A pool that always streams leaves it out.
   */
  takeWhole?(): Buffer[] | undefined;
}

export interface Upstream {
  request(r: UpstreamRequest): Promise<UpstreamResponse>;
  /** Graceful: requests in flight finish. */
  close(): Promise<void>;
}

/** A response body as the pools make it: a Readable the upstream pushes into, that can be dumped. */
export abstract class UpstreamBody extends Readable {
  /** Read and discard the rest (undici's BodyReadable.dump, for mirrors). */
  dump(): Promise<void> {
    return new Promise((resolve) => {
      this.once('end', resolve);
      this.once('close', resolve);
      this.once('error', () => resolve());
      this.resume();
    });
  }
}
