// Forward: one try of a request to one upstream endpoint, and relaying the chosen answer back.
//
// A try ends at the upstream's response headers, so the pipeline can still retry or answer
// otherwise; `relay` then commits the response downstream and streams its body. Failures are
// outcomes, not exceptions, with local-origin failures (connect, reset, timeout) kept apart
// from upstream responses.

import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import { MeshError, type ErrorCode } from '../core/errors.ts';

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

/** Copy the request headers once, dropping hop-by-hop ones and those `Connection` names. */
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
  pool: Pool;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body: Readable | undefined;
  /** Aborts the try (per-try timeout, whole-request timeout, client gone). */
  signal: AbortSignal;
}

export type TryOutcome = { kind: 'response'; data: Dispatcher.ResponseData } | { kind: 'local'; code: ErrorCode };

/** One try, up to the upstream's response headers. `timedOut()` tells a timeout from other aborts. */
export async function tryUpstream(o: TryOptions, timedOut: () => boolean): Promise<TryOutcome> {
  try {
    const data = await o.pool.request({ path: o.path, method: o.method as 'GET', headers: o.headers, body: o.body, signal: o.signal });
    return { kind: 'response', data };
  } catch (err) {
    return { kind: 'local', code: timedOut() ? 'UPSTREAM_TIMEOUT' : o.signal.aborted ? 'DOWNSTREAM_DISCONNECT' : classify(err) };
  }
}

export function grpcStatusOf(data: Dispatcher.ResponseData): string {
  const g = data.headers['grpc-status'];
  return typeof g === 'string' ? g : '';
}

/**
 * Commit the upstream response downstream and stream its body chunk by chunk (server-sent events
 * go out as they come; pipe() applies backpressure). If the upstream breaks mid-body, the
 * downstream response is destroyed so the client sees a broken stream, never a clean end.
 * Resolves with the bytes relayed, or the local failure that cut it.
 */
export function relay(
  data: Dispatcher.ResponseData,
  res: ServerResponse,
  extraHeaders: OutgoingHttpHeaders | undefined,
  edit: ((h: OutgoingHttpHeaders) => void) | undefined,
  timedOut: () => boolean,
): Promise<{ bytes: number; failure?: ErrorCode }> {
  const headers = responseHeaders(data.headers);
  if (extraHeaders) Object.assign(headers, extraHeaders);
  edit?.(headers);
  res.writeHead(data.statusCode, headers);
  let bytes = 0;
  const body = data.body;
  return new Promise((resolve) => {
    let done = false;
    const finish = (failure?: ErrorCode) => {
      if (done) return;
      done = true;
      if (failure) {
        body.destroy();
        if (!res.writableFinished) res.destroy();
      }
      resolve({ bytes, failure });
    };
    body.on('data', (c: Buffer) => {
      bytes += c.length;
      if (!res.write(c)) {
        body.pause();
        res.once('drain', () => body.resume());
      }
    });
    body.on('end', () => {
      res.end();
      finish();
    });
    body.on('error', () => finish(timedOut() ? 'UPSTREAM_TIMEOUT' : res.destroyed ? 'DOWNSTREAM_DISCONNECT' : 'UPSTREAM_RESET'));
    res.on('close', () => {
      if (!res.writableFinished) finish('DOWNSTREAM_DISCONNECT');
    });
  });
}

/** Count request bytes without consuming the body: a declared length is exact; else count as read. */
export function requestBody(req: IncomingMessage): { body: Readable | undefined; bytes: () => number } {
  const declared = req.headers['content-length'];
  if (declared !== undefined) {
    const n = Number(declared) || 0;
    return { body: n > 0 ? req : undefined, bytes: () => n };
  }
  if (req.headers['transfer-encoding'] === undefined) return { body: undefined, bytes: () => 0 };
  // A 'data' listener would start the stream flowing before undici reads it; count as it pulls.
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
  pool: Pool;
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
    return { kind: 'response', status: t.data.statusCode, grpcStatus: grpcStatusOf(t.data), requestBytes: bytes(), responseBytes: r.bytes };
  } finally {
    o.res.off('close', onClose);
  }
}

function classify(err: unknown): ErrorCode {
  const code = (err as { code?: string })?.code ?? '';
  if (code === 'ECONNREFUSED' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'EAI_AGAIN')
    return 'UPSTREAM_CONNECT_FAILURE';
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
    res.destroy();
    return;
  }
  const body = err.message + '\n';
  res.writeHead(err.status, {
    'content-type': 'text/plain',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}
