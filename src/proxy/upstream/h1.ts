// An HTTP/1.1 upstream on plain sockets: a keep-alive pool per address, the request head written
// as one string, the answer parsed by node's own llhttp binding (the parser node's http client uses).
//
// It replaces undici's Pool on the proxy's hot path: per request, undici's dispatcher, its
// WebAssembly parser and its request API cost about as much as everything Weft does itself
// (docs/performance.md, "What limits"). The contract is upstream.ts's: a request resolves at the
// answer's headers, its body streams after with backpressure, and a body that the upstream cut
// fails instead of ending, so the proxy can break the downstream answer too. A body that has all
// arrived before anyone reads it is handed over whole (H1Answer.takeWhole), without a stream.

import { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { hostName } from './h2.ts';
import { UpstreamBody, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.ts';
import { monotonicMs } from '../../core/clock.ts';

/** The llhttp binding as node's `_http_common` exposes it (the same parser node's http client runs). */
interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): Error | number;
  finish(): Error | number | undefined;
  close(): void;
  [callback: number]: unknown;
}
interface ParserClass {
  new (): Parser;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
}
const { HTTPParser } = process.getBuiltinModule('_http_common') as { HTTPParser: ParserClass };

export interface H1Options {
  /** `host:port`: the Host header when a request has none. */
  authority: string;
  /** A new connection to the address; `servername` is the request's host name (for TLS's SNI). */
  connect(servername: string | undefined): Socket;
  /** The socket event that says it is ready: `connect`, or `secureConnect` for TLS. */
  readyEvent: 'connect' | 'secureConnect';
  /** A connection not ready within this fails the request as a connect failure (default 10 s). */
  connectTimeoutMs?: number;
  /** Close a connection idle this long; 0 = never (default 30 s). */
  idleMs?: number;
  /** Requests a connection carries before it is closed; 0 = no limit. */
  maxRequestsPerConnection?: number;
  /** A connection this old takes no new request and closes once its request is done; 0 = no limit. */
  maxConnectionDurationMs?: number;
}

const CONNECT_TIMEOUT_MS = 10_000;
const IDLE_MS = 30_000;
/** Characters a header line cannot carry (they would end it, or split the request). */
const UNSAFE_VALUE = /[\r\n\0]/;
/** …and what a request target cannot (a space would end it). */
const UNSAFE_TARGET = /[\s\0]/;

/** An error with the code classify() (forward.ts) reads, as node and undici name them. */
function failure(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

export class H1Upstream implements Upstream {
  private readonly o: H1Options;
  /** Connections waiting for a request, the most recently used last (it is taken first). */
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private closed = false;
  private whenClosed?: () => void;
  private sweeper?: NodeJS.Timeout;

  constructor(o: H1Options) {
    this.o = o;
  }

  request(r: UpstreamRequest): Promise<UpstreamResponse> {
    if (this.closed) return Promise.reject(failure('the upstream pool is closed', 'UND_ERR_CLOSED'));
    if (r.signal?.aborted) return Promise.reject(r.signal.reason ?? failure('aborted', 'ABORT_ERR'));
    let head: string;
    try {
      head = requestHead(r, this.o.authority);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = this.take() ?? this.open(r);
    return c.send(r, head);
  }

  close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
    this.stopSweeper();
    if (this.all.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.whenClosed = resolve));
  }

  /** An idle connection still fit to use (not past its duration, not idle longer than allowed), or none. */
  private take(): Connection | undefined {
    const max = this.o.maxConnectionDurationMs ?? 0;
    const idleMs = this.o.idleMs ?? IDLE_MS;
    for (let c = this.idle.pop(); c; c = this.idle.pop()) {
      const now = monotonicMs();
      if ((max > 0 && now - c.openedAt >= max) || now - c.idleSince >= Math.min(idleMs > 0 ? idleMs : Infinity, c.serverIdleMs)) c.destroy();
      else return c;
    }
    return undefined;
  }

  private open(r: UpstreamRequest): Connection {
    const servername = typeof r.headers.host === 'string' ? hostName(r.headers.host) : undefined;
    const c = new Connection(this, this.o, servername);
    this.all.add(c);
    return c;
  }

  /** A connection finished a request and may take another. */
  released(c: Connection): void {
    const max = this.o.maxConnectionDurationMs ?? 0;
    if (this.closed || (max > 0 && monotonicMs() - c.openedAt >= max)) return c.destroy();
    c.idleSince = monotonicMs();
    this.idle.push(c);
    this.startSweeper();
  }

  /** A connection is gone (closed by either side, or failed). */
  gone(c: Connection): void {
    this.all.delete(c);
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
    if (this.all.size === 0) {
      this.stopSweeper();
      if (this.closed) this.whenClosed?.();
    }
  }

  /** One unref'd timer per pool closes connections idle too long (no timer per request). */
  private startSweeper(): void {
    const idleMs = this.o.idleMs ?? IDLE_MS;
    if (this.sweeper || idleMs <= 0) return;
    this.sweeper = setInterval(() => {
      const now = monotonicMs();
      for (const c of [...this.idle]) if (now - c.idleSince >= Math.min(idleMs, c.serverIdleMs)) c.destroy();
      if (this.idle.length === 0) this.stopSweeper();
    }, Math.max(100, Math.min(idleMs / 4, 5_000))).unref();
  }

  private stopSweeper(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
  }
}

/** The request line and headers, as one string; throws on a value that would break the framing. */
function requestHead(r: UpstreamRequest, authority: string): string {
  if (UNSAFE_TARGET.test(r.path)) throw failure(`request target ${JSON.stringify(r.path)} has whitespace or NUL in it`, 'UND_ERR_INVALID_ARG');
  let head = `${r.method} ${r.path} HTTP/1.1\r\n`;
  let hasHost = false;
  let hasLength = false;
  const h = r.headers;
  for (const name in h) {
    const v = h[name]!;
    if (name === 'host') hasHost = true;
    else if (name === 'content-length') hasLength = true;
    if (typeof v === 'string') {
      if (UNSAFE_VALUE.test(v)) throw failure(`header ${name} has a line break or NUL in its value`, 'UND_ERR_INVALID_ARG');
      head += `${name}: ${v}\r\n`;
    } else
      for (const one of v) {
        if (UNSAFE_VALUE.test(one)) throw failure(`header ${name} has a line break or NUL in its value`, 'UND_ERR_INVALID_ARG');
        head += `${name}: ${one}\r\n`;
      }
  }
  if (!hasHost) head += `host: ${authority}\r\n`;
  // A body of unknown length goes chunked; a method that carries a body gets an explicit empty one.
  if (r.body && !hasLength) head += 'transfer-encoding: chunked\r\n';
  else if (!r.body && !hasLength && (r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH')) head += 'content-length: 0\r\n';
  return head + '\r\n';
}

/** One keep-alive connection: one request at a time (no pipelining, as undici's default). */
class Connection {
  readonly openedAt = monotonicMs();
  idleSince = 0;
  /**
   * How long the server said it keeps an idle connection (`Keep-Alive: timeout=N`), less a second,
   * so the proxy lets go first rather than send a request into a closing connection (undici's rule).
   */
  serverIdleMs = Infinity;
  private readonly pool: H1Upstream;
  private readonly socket: Socket;
  private readonly parser: Parser;
  private readonly maxRequests: number;
  private served = 0;
  private ready = false;
  private connectTimer?: NodeJS.Timeout;
  private dead = false;

  // The request in progress.
  private resolve?: (r: UpstreamResponse) => void;
  private reject?: (err: Error) => void;
  private answer?: H1Answer;
  private headOnly = false;
  /** Header lines llhttp handed over before the headers (or, after them, the trailers) were complete. */
  private lines: string[] = [];
  private trailers: Record<string, string | string[] | undefined> = {};
  private keepAlive = false;
  private requestDone = true;
  private responseDone = true;
  private signal?: AbortSignal;
  private requestBody?: Readable;

  constructor(pool: H1Upstream, o: H1Options, servername: string | undefined) {
    this.pool = pool;
    this.maxRequests = o.maxRequestsPerConnection ?? 0;
    this.parser = new HTTPParser();
    this.parser.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
    this.parser[HTTPParser.kOnHeaders] = (lines: string[]) => {
      for (const l of lines) this.lines.push(l);
    };
    this.parser[HTTPParser.kOnHeadersComplete] = (_maj: number, _min: number, lines: string[] | undefined, _m: unknown, _u: unknown, status: number, _text: string, _upgrade: boolean, keepAlive: boolean) =>
      this.onHead(status, lines, keepAlive);
    this.parser[HTTPParser.kOnBody] = (chunk: Buffer) => this.onBody(chunk);
    this.parser[HTTPParser.kOnMessageComplete] = () => this.onComplete();

    let socket: Socket;
    try {
      socket = o.connect(servername);
    } catch (err) {
      // Refused before any socket (ISTIO_MUTUAL without a certificate): a connect failure.
      socket = destroyedSocket(err as Error);
    }
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
    socket.on('drain', this.onDrain);
    socket.once(o.readyEvent, () => {
      this.ready = true;
      clearTimeout(this.connectTimer);
    });
    this.connectTimer = setTimeout(() => {
      if (!this.ready) this.fail(failure('connect timeout', 'UND_ERR_CONNECT_TIMEOUT'));
    }, o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
  }

  send(r: UpstreamRequest, head: string): Promise<UpstreamResponse> {
    this.served++;
    this.requestDone = !r.body;
    this.responseDone = false;
    this.headOnly = r.method === 'HEAD';
    this.lines = [];
    this.trailers = {};
    this.answer = undefined;
    const answer = new Promise<UpstreamResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    if (r.signal) {
      this.signal = r.signal;
      r.signal.addEventListener('abort', this.onAbort);
    }
    this.socket.write(head, 'latin1');
    if (!r.body) return answer;
    const chunked = r.headers['content-length'] === undefined;
    const body = r.body;
    this.requestBody = body;
    body.on('data', (chunk: Buffer) => {
      if (this.requestBody !== body || chunk.length === 0) return;
      let ok: boolean;
      if (chunked) {
        // One send for the chunk and its framing.
        this.socket.cork();
        this.socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        this.socket.write(chunk);
        ok = this.socket.write('\r\n', 'latin1');
        this.socket.uncork();
      } else ok = this.socket.write(chunk);
      if (!ok) body.pause();
    });
    body.once('end', () => {
      if (this.requestBody !== body) return;
      if (chunked) this.socket.write('0\r\n\r\n', 'latin1');
      this.requestBody = undefined;
      this.requestDone = true;
      if (this.responseDone) this.finished();
    });
    body.once('error', (err) => {
      if (this.requestBody === body) this.fail(err);
    });
    return answer;
  }

  destroy(): void {
    if (!this.dead) this.socket.destroy();
    this.gone();
  }

  private readonly onData = (data: Buffer): void => {
    const r = this.parser.execute(data);
    if (r instanceof Error) this.fail(failure(`the upstream's answer is not valid HTTP/1.1: ${(r as { reason?: string }).reason ?? r.message}`, 'UND_ERR_SOCKET'));
  };

  private readonly onEnd = (): void => {
    // A body that runs until the connection closes ends here; any other answer is cut.
    const r = this.parser.finish();
    if (r instanceof Error || !this.responseDone) this.fail(failure('upstream closed the connection before the answer was complete', 'UND_ERR_SOCKET'));
    else this.destroy();
  };

  private readonly onError = (err: Error): void => this.fail(err);

  private readonly onClose = (): void => {
    if (!this.responseDone) this.fail(failure('upstream connection closed', 'UND_ERR_SOCKET'));
    this.gone();
  };

  private readonly onDrain = (): void => {
    this.requestBody?.resume();
  };

  private readonly onAbort = (): void => {
    this.fail((this.signal?.reason as Error | undefined) ?? failure('aborted', 'ABORT_ERR'));
  };

  private onHead(status: number, lines: string[] | undefined, keepAlive: boolean): number {
    const all = lines ?? this.lines;
    this.lines = [];
    if (this.dead) return 1;
    // 1xx (100 Continue, 103 Early Hints): not the answer; the final one follows.
    if (status < 200) return 0;
    if (!this.resolve) {
      // An answer nobody asked for (or a second one): the connection cannot be trusted.
      this.fail(failure('upstream sent an answer to no request', 'UND_ERR_SOCKET'));
      return 1;
    }
    // No prototype: a header named `__proto__` is just a header.
    const headers: Record<string, string | string[] | undefined> = Object.create(null);
    for (let i = 0; i < all.length; i += 2) {
      const name = all[i]!.toLowerCase();
      const prev = headers[name];
      if (prev === undefined) headers[name] = all[i + 1]!;
      else if (Array.isArray(prev)) prev.push(all[i + 1]!);
      else headers[name] = [prev, all[i + 1]!];
    }
    this.keepAlive = keepAlive;
    const hint = headers['keep-alive'];
    if (typeof hint === 'string') {
      const m = /timeout\s*=\s*(\d+)/i.exec(hint);
      if (m) this.serverIdleMs = Math.max(0, Number(m[1]) * 1000 - 1000);
    }
    const answer = new H1Answer(this, status, headers, this.trailers);
    this.answer = answer;
    const resolve = this.resolve!;
    this.resolve = this.reject = undefined;
    resolve(answer);
    // An answer to HEAD has no body, whatever its headers say: tell the parser so.
    return this.headOnly ? 1 : 0;
  }

  private onBody(chunk: Buffer): void {
    if (this.answer && !this.dead && !this.answer.push(chunk)) this.socket.pause();
  }

  private onComplete(): void {
    // The end of a 1xx answer: the real one is still to come (or of one the connection refused).
    if (!this.answer || this.dead) return;
    for (let i = 0; i < this.lines.length; i += 2) this.trailers[this.lines[i]!.toLowerCase()] = this.lines[i + 1]!;
    this.lines = [];
    this.responseDone = true;
    this.answer.end();
    if (this.requestDone) this.finished();
  }

  /** Both the request and its answer are done: the connection takes the next request, or closes. */
  private finished(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    this.answer = undefined;
    if (this.dead) return;
    if (!this.keepAlive || (this.maxRequests > 0 && this.served >= this.maxRequests)) return this.destroy();
    // Paused by a slow reader of the body just finished: the next answer must be read.
    this.socket.resume();
    this.pool.released(this);
  }

  /** The request in progress fails (before its answer: rejected; after: its body errors); the connection is closed. */
  private fail(err: Error): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    this.requestBody = undefined;
    const reject = this.reject;
    this.resolve = this.reject = undefined;
    if (reject) reject(err);
    else if (this.answer && !this.responseDone) this.answer.fail(err);
    this.responseDone = true;
    this.answer = undefined;
    this.destroy();
  }

  private gone(): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.connectTimer);
    // Not now: this may run inside one of the parser's own callbacks, and freeing a parser that is
    // executing crashes the process.
    setImmediate(closeParser, this.parser);
    this.pool.gone(this);
  }

  /** The body's reader wants more. */
  resume(): void {
    if (!this.dead) this.socket.resume();
  }

  /** The body's reader gave up before the end: the connection cannot be reused. */
  abandon(answer: H1Answer, err: Error | null): void {
    if (this.answer === answer && !this.responseDone) this.fail(err ?? failure('answer abandoned', 'UND_ERR_ABORTED'));
  }
}

/**
 * Bytes of body kept in H1Answer before it becomes a stream anyway: a Readable's own high-water
 * mark, so a big or slow answer nobody reads yet is held back by the same backpressure as before.
 */
const WHOLE_BODY_BYTES = 16 * 1024;

/**
 * One answer. Its body is kept as chunks until someone reads it: reading `body` makes the stream
 * (with what came so far), and so does a body that outgrows WHOLE_BODY_BYTES first. An answer that
 * had all arrived by then — most answers of a model call, which come in one read with their
 * headers — is taken whole by the relay (takeWhole): no Readable, no ticks, one write downstream.
 */
class H1Answer implements UpstreamResponse {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly trailers: Record<string, string | string[] | undefined>;
  private readonly conn: Connection;
  /** The body so far, while it is not a stream; undefined once streamed or taken. */
  private chunks: Buffer[] | undefined = [];
  private bytes = 0;
  private ended = false;
  private error?: Error;
  private stream?: H1Body;

  constructor(conn: Connection, status: number, headers: Record<string, string | string[] | undefined>, trailers: Record<string, string | string[] | undefined>) {
    this.conn = conn;
    this.statusCode = status;
    this.headers = headers;
    this.trailers = trailers;
  }

  get body(): H1Body {
    return (this.stream ??= this.toStream());
  }

  takeWhole(): Buffer[] | undefined {
    if (this.stream || !this.ended || !this.chunks) return undefined;
    const whole = this.chunks;
    this.chunks = undefined;
    return whole;
  }

  /** A chunk from the upstream; false: stop reading the socket until the reader wants more. */
  push(chunk: Buffer): boolean {
    if (this.stream) return this.stream.push(chunk);
    this.chunks!.push(chunk);
    this.bytes += chunk.length;
    if (this.bytes < WHOLE_BODY_BYTES) return true;
    const s = this.body;
    return s.readableLength < s.readableHighWaterMark;
  }

  end(): void {
    if (this.stream) this.stream.push(null);
    else this.ended = true;
  }

  /** The upstream cut the body: a stream made now or later fails with `err`. */
  fail(err: Error): void {
    if (this.stream) {
      if (!this.stream.destroyed) this.stream.destroy(err);
      return;
    }
    this.error = err;
    this.chunks = [];
  }

  private toStream(): H1Body {
    const s = new H1Body(this.conn, this);
    for (const c of this.chunks ?? []) s.push(c);
    this.chunks = undefined;
    if (this.error) s.destroy(this.error);
    else if (this.ended) s.push(null);
    return s;
  }
}

/** The answer's body as a stream: backpressure reaches the socket; destroying it early closes the connection. */
class H1Body extends UpstreamBody {
  private readonly conn: Connection;
  private readonly answer: H1Answer;
  constructor(conn: Connection, answer: H1Answer) {
    super();
    this.conn = conn;
    this.answer = answer;
  }
  override _read(): void {
    this.conn.resume();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.conn.abandon(this.answer, err);
    cb(err);
  }
}

function closeParser(p: Parser): void {
  p.close();
}

/** A socket that fails at once with `err`: a connection that could not even be started. */
function destroyedSocket(err: Error): Socket {
  const s = new Socket();
  queueMicrotask(() => s.destroy(err));
  return s;
}
