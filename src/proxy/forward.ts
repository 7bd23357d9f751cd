// Forward: one request to one upstream endpoint over its pool, the response streamed back.
//
// Shared by the outbound pipeline and the inbound side. It reports what happened as an outcome
// instead of throwing, separating local-origin failures (connect, reset, timeout) from responses.

import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Pool } from 'undici';
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
    const name = raw[i].toLowerCase();
    if (name === 'connection') {
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

function responseHeaders(h: Record<string, string | string[] | undefined>, extra?: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  let connectionNamed: string[] = [];
  const conn = h.connection;
  if (typeof conn === 'string') connectionNamed = conn.split(',').map((t) => t.trim().toLowerCase());
  for (const name in h) {
    if (HOP_BY_HOP.has(name) || connectionNamed.includes(name)) continue;
    const v = h[name];
    if (v !== undefined) out[name] = v;
  }
  if (extra) Object.assign(out, extra);
  return out;
}

export interface ForwardOptions {
  pool: Pool;
  req: IncomingMessage;
  res: ServerResponse;
  path: string;
  headers: Record<string, string | string[]>;
  /** Whole-request timeout (route `timeout`); undefined = none, as in Istio. */
  timeoutMs?: number;
  /** Headers added to the response (e.g. a consistent-hash cookie). */
  responseExtra?: OutgoingHttpHeaders;
}

/**
 * Send and stream back. Before response headers are sent, a failure is returned as a local
 * outcome so the caller answers with the right status and flag. After that, a failure destroys
 * the downstream response, so the client sees a broken stream, never a clean end.
 */
export async function forward(o: ForwardOptions): Promise<Outcome> {
  const { req, res } = o;
  const ac = new AbortController();
  let timedOut = false;
  const timer = o.timeoutMs
    ? setTimeout(() => {
        timedOut = true;
        ac.abort();
      }, o.timeoutMs)
    : undefined;
  // A client that goes away cancels the upstream request.
  const onClose = () => {
    if (!res.writableFinished) ac.abort();
  };
  res.once('close', onClose);
  // Count request bytes without consuming the stream ourselves: a declared length is exact; a
  // chunked body is counted as undici pulls it (backpressure stays with undici).
  const declared = req.headers['content-length'];
  let requestBytes = declared !== undefined ? Number(declared) || 0 : 0;
  const chunked = declared === undefined && req.headers['transfer-encoding'] !== undefined;
  const body = declared !== undefined ? (requestBytes > 0 ? req : undefined) : chunked ? Readable.from(counted(req, (n) => (requestBytes += n))) : undefined;
  let responseBytes = 0;
  let headersSent = false;
  try {
    const up = await o.pool.request({
      path: o.path,
      method: req.method as 'GET',
      headers: o.headers,
      body,
      signal: ac.signal,
    });
    const grpcStatus = typeof up.headers['grpc-status'] === 'string' ? up.headers['grpc-status'] : '';
    res.writeHead(up.statusCode, responseHeaders(up.headers, o.responseExtra));
    headersSent = true;
    // Server-sent events and chunked bodies go out chunk by chunk; pipeline applies backpressure.
    up.body.on('data', (c: Buffer) => (responseBytes += c.length));
    await pipeline(up.body, res);
    return { kind: 'response', status: up.statusCode, grpcStatus, requestBytes, responseBytes };
  } catch (err) {
    const code: ErrorCode = timedOut
      ? 'UPSTREAM_TIMEOUT'
      : res.destroyed && !res.writableFinished && ac.signal.aborted
        ? 'DOWNSTREAM_DISCONNECT'
        : classify(err);
    if (headersSent && !res.writableFinished) res.destroy(err instanceof Error ? err : undefined);
    return { kind: 'local', code, requestBytes, responseBytes, headersSent };
  } finally {
    if (timer) clearTimeout(timer);
    res.off('close', onClose);
  }
}

async function* counted(req: IncomingMessage, add: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const chunk of req) {
    add((chunk as Buffer).length);
    yield chunk as Buffer;
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
