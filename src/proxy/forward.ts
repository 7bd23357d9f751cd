// Forward: one try of a request to one upstream endpoint, and relaying the chosen answer back.
//
// A try ends at the upstream's response headers, so the pipeline can still retry or answer
// otherwise; `relay` then commits the response downstream and streams its body. Failures are
// outcomes, not exceptions, with local-origin failures (connect, reset, timeout) kept apart
// from upstream responses.

import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import { Readable } from 'node:stream';
import { MeshError, type ErrorCode } from '../core/errors.ts';
import type { UpstreamProtocol } from '../wire/snapshot.ts';
import type { Upstream, UpstreamResponse } from './upstream/upstream.ts';

export type Outcome =
  | { kind: 'response'; status: number; grpcStatus: string; responseBytes: number; requestBytes: number }
  | { kind: 'local'; code: ErrorCode; requestBytes: number; responseBytes: number; headersSent: boolean };

/** Hop-by-hop headers (RFC 9110 §7.6.1) never cross the proxy; plus the proxy-only ones. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * Copy the request headers once, dropping hop-by-hop ones and those `Connection` names, and
 * HTTP/2 pseudo-headers (`:authority` becomes `host`, set by the caller). `TE: trailers` is kept,
 * as Envoy keeps it: gRPC needs it end to end.
 */
export function forwardableHeaders(raw: string[], extraDrop?: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  let connectionNamed: Set<string> | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 10 && raw[i].toLowerCase() === 'connection') {
      connectionNamed ??= new Set();
      for (const t of raw[i + 1].split(',')) connectionNamed.add(t.trim().toLowerCase());
    }
  }
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name.charCodeAt(0) === 58 /* : */) continue;
    if (name === 'te') {
      if (/(?:^|,)\s*trailers\s*(?:[;,]|$)/i.test(raw[i + 1])) out.te = 'trailers';
      continue;
    }
    // The proxy's server has answered `Expect: 100-continue` itself (node's default), as Envoy
    // does; passed on, the upstream would wait to give a go-ahead of its own, or refuse it (417).
    if (name === 'expect' && raw[i + 1].trim().toLowerCase() === '100-continue') continue;
    if (HOP_BY_HOP.has(name) || name === extraDrop || connectionNamed?.has(name)) continue;
    const prev = out[name];
    if (prev === undefined) out[name] = raw[i + 1];
    else if (Array.isArray(prev)) prev.push(raw[i + 1]);
    else out[name] = [prev, raw[i + 1]];
  }
  return out;
}

export function responseHeaders(h: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  let connectionNamed: string[] | undefined;
  const conn = h.connection;
  if (typeof conn === 'string') connectionNamed = conn.split(',').map((t) => t.trim().toLowerCase());
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || connectionNamed?.includes(name)) continue;
    const v = h[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export interface TryOptions {
  /** The endpoint's connection pool for the cluster's protocol (HTTP/1.1, h2c, TLS), or the request's (endpoints.ts poolFor). */
  pool: Upstream;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Readable | undefined;
  /** Aborts the try (per-try timeout, whole-request timeout, client gone). */
  signal: AbortSignal;
}

export type TryOutcome = { kind: 'response'; data: UpstreamResponse } | { kind: 'local'; code: ErrorCode };

/** One try, up to the upstream's response headers. `timedOut()` tells a timeout from other aborts. */
export async function tryUpstream(o: TryOptions, timedOut: () => boolean): Promise<TryOutcome> {
  try {
    const data = await o.pool.request({ path: o.path, method: o.method, headers: o.headers, body: o.body, signal: o.signal });
    return { kind: 'response', data };
  } catch (err) {
    return { kind: 'local', code: tryFailure(err, o.signal, timedOut()) };
  }
}

/** Why a try failed before its answer: its timeout, the request aborted (the client left), or what the upstream did. */
export function tryFailure(err: unknown, signal: AbortSignal, timedOut: boolean): ErrorCode {
  return timedOut ? 'UPSTREAM_TIMEOUT' : signal.aborted ? 'DOWNSTREAM_DISCONNECT' : classify(err);
}

/**
 * The gRPC status in the response headers: present only in a trailers-only answer (no body), the
 * one kind of gRPC answer a retry may replace. The status of an answer with a body comes in its
 * trailers (see relay).
 */
export function grpcStatusOf(data: UpstreamResponse): string {
  const g = data.headers['grpc-status'];
  return typeof g === 'string' ? g : '';
}

/** Is the downstream side HTTP/2 (node's compatibility API)? Then it has the stream. */
function h2StreamOf(res: ServerResponse): ServerHttp2Stream | undefined {
  return (res as unknown as { stream?: ServerHttp2Stream }).stream;
}

/**
 * Break a response the client has started to receive, so it reads as an error, never as a clean
 * end: RST_STREAM (INTERNAL_ERROR) on HTTP/2, a destroyed connection on HTTP/1.1.
 */
export function abortDownstream(res: ServerResponse): void {
  const stream = h2StreamOf(res);
  if (!stream) {
    res.destroy();
    return;
  }
  // destroy, not close(code): close() ends our side first (END_STREAM), and a reset that follows
  // a clean end is no error to the client.
  if (!stream.destroyed) {
    stream.on('error', () => {});
    stream.destroy(new Error('upstream stream broke'));
  }
}

/** What a relay does besides passing the answer through. */
export interface RelayOptions {
  /**
   * The body's first chunk, already read (the pipeline waits for it under a first-byte
   * timeout), or `null` when the body ended without one.
   */
  first?: Buffer | null;
  /** Cut the answer (flag `SI`) when no chunk comes for this long once it started. */
  idleTimeoutMs?: number;
  /** Sees every chunk relayed (the fallback cache keeps good answers). */
  tap?: (chunk: Buffer) => void;
}

/**
 * Commit the upstream response downstream and stream its body chunk by chunk (server-sent events
 * go out as they come; backpressure reaches the upstream), then its trailers (gRPC's status). If
 * the upstream breaks mid-body, or stays silent past the idle timeout, the downstream response is
 * broken (abortDownstream) so the client sees an error, never a clean end. Resolves with the
 * bytes relayed and the gRPC status (from the trailers, else the headers), or the local failure
 * that cut it.
 */
export function relay(
  data: UpstreamResponse,
  res: ServerResponse,
  extraHeaders: OutgoingHttpHeaders | undefined,
  edit: ((h: OutgoingHttpHeaders) => void) | undefined,
  timedOut: () => boolean,
  opts: RelayOptions = {},
): Promise<{ bytes: number; grpcStatus: string; failure?: ErrorCode }> {
  const headers = responseHeaders(data.headers);
  if (extraHeaders) Object.assign(headers, extraHeaders);
  edit?.(headers);
  let bytes = 0;
  let grpcStatus = grpcStatusOf(data);
  if (data.trailersOnly) {
    // Keep the form: gRPC clients read a status in the headers only when they end the stream.
    answerWhole(res, data.statusCode, headers, '');
    return Promise.resolve({ bytes, grpcStatus });
  }
  // A body already read from (a first chunk held for the first-byte timeout) is not whole any more.
  const whole = data.takeWhole?.();
  if (whole) return Promise.resolve(relayWhole(data, res, headers, whole, grpcStatus, opts.tap));
  res.writeHead(data.statusCode, headers);
  const body = data.body;
  return new Promise((resolve) => {
    let done = false;
    let idle: ReturnType<typeof setTimeout> | undefined;
    const idleMs = opts.idleTimeoutMs;
    const armIdle = () => {
      if (idleMs === undefined) return;
      if (idle) idle.refresh();
      else idle = setTimeout(() => finish('STREAM_IDLE_TIMEOUT'), idleMs);
    };
    const finish = (failure?: ErrorCode) => {
      if (done) return;
      done = true;
      if (idle) clearTimeout(idle);
      // Let go of both streams: a listener left on them keeps this request's whole state
      // reachable for as long as either object lives (see docs/performance.md, garbage collection).
      body.off('data', write);
      body.off('end', end);
      body.off('error', onError);
      body.on('error', ignore);
      res.off('close', onClose);
      if (failure) {
        body.destroy();
        if (!res.writableFinished) abortDownstream(res);
      }
      resolve({ bytes, grpcStatus, failure });
    };
    const write = (c: Buffer) => {
      bytes += c.length;
      opts.tap?.(c);
      armIdle();
      if (!res.write(c)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    };
    const end = () => {
      grpcStatus = addTrailers(res, data) ?? grpcStatus;
      res.end();
      finish();
    };
    const onClose = () => {
      if (!res.writableFinished) finish('DOWNSTREAM_DISCONNECT');
    };
    const onError = () => finish(timedOut() ? 'UPSTREAM_TIMEOUT' : res.destroyed ? 'DOWNSTREAM_DISCONNECT' : 'UPSTREAM_RESET');
    res.on('close', onClose);
    if (opts.first === null) return end();
    armIdle();
    if (opts.first) write(opts.first);
    body.on('data', write);
    body.on('end', end);
    body.on('error', onError);
    // A body paused while its first chunk was awaited does not flow again by itself.
    if (!body.readableFlowing) body.resume();
  });
}

/**
 * relay's short way, for an answer whose body had all arrived (UpstreamResponse.takeWhole): the
 * head, the body and the end go out in one write, with no stream in between. A client already
 * gone is a disconnect, as it would be midway through a stream.
 */
function relayWhole(data: UpstreamResponse, res: ServerResponse, headers: OutgoingHttpHeaders, chunks: Buffer[], grpcStatus: string, tap: ((chunk: Buffer) => void) | undefined): { bytes: number; grpcStatus: string; failure?: ErrorCode } {
  if (res.destroyed) return { bytes: 0, grpcStatus, failure: 'DOWNSTREAM_DISCONNECT' };
  const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
  tap?.(body);
  res.writeHead(data.statusCode, headers);
  grpcStatus = addTrailers(res, data) ?? grpcStatus;
  if (body.length > 0) res.end(body);
  else res.end();
  return { bytes: body.length, grpcStatus };
}

/** Pass the answer's trailers on (the upstream has filled them in by the time its body ends); their gRPC status, if any. */
function addTrailers(res: ServerResponse, data: UpstreamResponse): string | undefined {
  const trailers = responseHeaders(data.trailers ?? {});
  const g = trailers['grpc-status'];
  if (Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
  return typeof g === 'string' ? g : undefined;
}

/** An 'error' listener for a stream whose errors no longer matter. */
const ignore = () => {};

/**
 * Wait for the first chunk of an answer's body, at most `ms`: the chunk (the body is left paused
 * with the chunk taken out), `null` when the body ended without one, or why there is none.
 */
export function firstChunk(body: Readable, ms: number): Promise<Buffer | null | 'timeout' | 'error'> {
  return new Promise((resolve) => {
    const settle = (r: Buffer | null | 'timeout' | 'error') => {
      clearTimeout(timer);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      resolve(r);
    };
    const onData = (c: Buffer) => {
      body.pause();
      settle(c);
    };
    const onEnd = () => settle(null);
    const onError = () => settle('error');
    const timer = setTimeout(() => settle('timeout'), Math.max(0, ms));
    body.on('data', onData);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

/** The protocol the request came in over, as a `useClientProtocol` cluster keeps it: HTTP/2, or HTTP/1.x (1.0 too). */
export function clientProtocol(req: IncomingMessage): UpstreamProtocol {
  return req.httpVersionMajor === 2 ? 'h2' : 'http1';
}

/**
 * Does the request carry a body? HTTP/1.1 says so with Content-Length or Transfer-Encoding;
 * HTTP/2 by not ending the stream with its HEADERS frame (gRPC streams declare no length).
 */
export function hasRequestBody(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 2) {
    const stream = (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream;
    return stream?.endAfterHeaders === false && req.headers['content-length'] !== '0';
  }
  const declared = req.headers['content-length'];
  return declared !== undefined ? declared !== '0' : req.headers['transfer-encoding'] !== undefined;
}

/** Count request bytes without consuming the body: a declared length is exact; else count as read. */
export function requestBody(req: IncomingMessage): { body: Readable | undefined; bytes: () => number } {
  if (!hasRequestBody(req)) return { body: undefined, bytes: () => 0 };
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared) || 0;
    return { body: n > 0 ? req : undefined, bytes: () => n };
  }
  // A 'data' listener would start the stream flowing before the upstream reads it; count as it pulls.
  let n = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of req) {
      n += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
  }
  return { body: Readable.from(counted()), bytes: () => n };
}

/**
 * One request, one try, relayed: the inbound side's whole job. Before response headers, a failure
 * is returned so the caller answers with the right status and flag.
 */
export async function forward(o: {
  pool: Upstream;
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  headers: Record<string, string | string[]>;
}): Promise<Outcome> {
  const ac = new AbortController();
  const onClose = () => {
    if (!o.res.writableFinished) ac.abort();
  };
  o.res.once('close', onClose);
  const { body, bytes } = requestBody(o.req);
  const never = () => false;
  try {
    const t = await tryUpstream({ pool: o.pool, method: o.req.method ?? 'GET', path: o.path, headers: o.headers, body, signal: ac.signal }, never);
    if (t.kind === 'local') return { kind: 'local', code: t.code, requestBytes: bytes(), responseBytes: 0, headersSent: false };
    const r = await relay(t.data, o.res, undefined, undefined, never);
    if (r.failure) return { kind: 'local', code: r.failure, requestBytes: bytes(), responseBytes: r.bytes, headersSent: true };
    return { kind: 'response', status: t.data.statusCode, grpcStatus: r.grpcStatus, requestBytes: bytes(), responseBytes: r.bytes };
  } finally {
    o.res.off('close', onClose);
  }
}

/** Connect-time failures (Envoy's `UF`), TLS handshake and certificate failures among them. */
const CONNECT_FAILURES = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

function classify(err: unknown): ErrorCode {
  const code = (err as { code?: string })?.code ?? '';
  if (CONNECT_FAILURES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) return 'UPSTREAM_CONNECT_FAILURE';
  // The HTTP/2 upstream tells a stream the server never processed from other resets (h2.ts).
  if (code === 'UPSTREAM_REFUSED_STREAM') return 'UPSTREAM_REFUSED_STREAM';
  return 'UPSTREAM_RESET';
}

/**
 * Settle an outcome: answer a local failure that happened before headers (unless the client is
 * gone), and return what telemetry records — the status the client saw and the Envoy flag.
 */
export function settle(res: ServerResponse, outcome: Outcome): { status: number; flag: string; grpcStatus: string } {
  if (outcome.kind === 'response') return { status: outcome.status, flag: '-', grpcStatus: outcome.grpcStatus };
  const err = new MeshError(outcome.code);
  if (!outcome.headersSent && outcome.code !== 'DOWNSTREAM_DISCONNECT') sendError(res, err);
  return { status: outcome.headersSent ? res.statusCode : err.status, flag: err.flag, grpcStatus: '' };
}

/** Answer with a mesh error: status, Envoy flag, body. Only when nothing was sent yet. */
export function sendError(res: ServerResponse, err: MeshError, extra?: OutgoingHttpHeaders): void {
  if (res.headersSent) {
    abortDownstream(res);
    return;
  }
  const body = err.message + '\n';
  answerWhole(res, err.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), ...err.headers, ...extra }, body);
}

/**
 * An answer made whole at once (the proxy's own, or one that had nothing after its headers).
 * Headers go with the end, so over HTTP/2 an answer without a body is a single HEADERS frame
 * that ends the stream — what gRPC clients need to read a status from the headers.
 */
export function answerWhole(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string | Buffer): void {
  res.statusCode = status;
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) res.setHeader(name, value);
  if (body.length > 0) res.end(body);
  else res.end();
}
