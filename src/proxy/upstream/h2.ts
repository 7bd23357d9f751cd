// An HTTP/2 upstream on node:http2: a few multiplexed sessions per address (h2c with prior
// knowledge, or h2 over TLS), requests as streams.
//
// undici's HTTP/2 client ends a response body cleanly when the upstream resets the stream after
// the headers, which would turn a cut token stream into a complete-looking one; here a body ends
// only if its stream closed without error, otherwise it fails, so the proxy can break the
// downstream stream too. A stream the server refused unprocessed (REFUSED_STREAM, or above a
// GOAWAY's last stream id) fails with a code of its own, `UPSTREAM_REFUSED_STREAM`, which
// Envoy's `refused-stream` retry condition replays whatever the method.

import { connect as h2connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { Socket } from 'node:net';
import { UpstreamBody, type Upstream, type UpstreamRequest, type UpstreamResponse } from './upstream.ts';

/** No frames for this long on a session with no streams: close it (undici's keep-alive, for h2). */
const IDLE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface H2Options {
  /** `http` (h2c) or `https` (h2 over TLS): the `:scheme` sent. */
  scheme: 'http' | 'https';
  /** `host:port`, the default `:authority`. */
  authority: string;
  /** A new connection to the address; `servername` is the request's host name (for TLS's SNI). */
  connect(servername: string | undefined): Socket;
  /** A session not up within this is a connect failure (default 10 s). */
  connectTimeoutMs?: number;
  /** Close a session without streams after this long idle; 0 = never (default 30 s). */
  idleMs?: number;
  /** Streams a session carries before it takes no more and closes once idle; 0 = no limit. */
  maxRequestsPerSession?: number;
  /** Streams at once per session at most, below the server's own limit; 0 = the server's limit. */
  maxConcurrentStreams?: number;
  /**
   * This long after it connected a session drains: no new streams (the next request opens another
   * session), closed once its streams are done, none cut (Istio's `tcp.maxConnectionDuration`).
   */
  maxSessionDurationMs?: number;
  /** A PING every intervalMs; no ACK within timeoutMs destroys the session (Istio's `http.http2KeepAlive`). */
  keepAlive?: { intervalMs: number; timeoutMs: number };
  /** Timers for the duration and keepalive (tests fire them by hand); default: unref'd real timers. */
  schedule?: Schedule;
}

/** Calls `fire` after `ms`; the returned function cancels it. */
export type Schedule = (ms: number, fire: () => void) => () => void;

const realTimers: Schedule = (ms, fire) => {
  // Unref'd like the session itself: a pooled session never keeps the process alive.
  const t = setTimeout(fire, ms).unref();
  return () => clearTimeout(t);
};

interface Session {
  session: ClientHttp2Session;
  servername: string | undefined;
  streams: number;
  /** Streams opened so far (for maxRequestsPerSession). */
  served: number;
  /** Past its maxSessionDurationMs: out of the pool, closed when its last stream ends. */
  draining: boolean;
  /** The lowest last-stream-id of the GOAWAYs received: streams above it were never processed. */
  goawayLastStreamId?: number;
}

export class H2Upstream implements Upstream {
  private readonly o: H2Options;
  private readonly sessions: Session[] = [];
  private readonly connecting = new Map<string, Promise<Session>>();
  private closed = false;

  constructor(o: H2Options) {
    this.o = o;
  }

  /** Use an already connected socket (an ALPN probe that chose h2) as the first session. */
  adopt(socket: Socket, servername: string | undefined): void {
    const key = servername ?? '';
    const opening = this.open(servername, socket).finally(() => this.connecting.delete(key));
    opening.catch(() => {});
    this.connecting.set(key, opening);
  }

  async request(r: UpstreamRequest): Promise<UpstreamResponse> {
    const host = typeof r.headers.host === 'string' ? r.headers.host : this.o.authority;
    const servername = this.o.scheme === 'https' ? hostName(host) : undefined;
    // A stream slot on the session is reserved already (so concurrent requests respect its limits).
    const s = await this.session(servername);
    const headers: OutgoingHttpHeaders = { ':method': r.method, ':path': r.path, ':scheme': this.o.scheme, ':authority': host };
    for (const [name, value] of Object.entries(r.headers)) if (name !== 'host') headers[name] = value;
    let stream: ClientHttp2Stream;
    try {
      r.signal?.throwIfAborted();
    } catch (err) {
      this.release(s);
      throw err;
    }
    try {
      stream = s.session.request(headers, { endStream: !r.body });
    } catch (err) {
      this.release(s);
      throw Object.assign(new Error(`HTTP/2 stream not opened: ${(err as Error).message}`), { code: 'UPSTREAM_RESET', cause: err });
    }
    stream.once('close', () => this.release(s));
    return exchange(stream, r, s);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.all(
      this.sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.session.closed || s.session.destroyed) return resolve();
            s.session.close(() => resolve());
          }),
      ),
    ).then(() => {});
  }

  private retire(s: Session): void {
    const i = this.sessions.indexOf(s);
    if (i >= 0) this.sessions.splice(i, 1);
  }

  /** Used up (Istio's maxRequestsPerConnection): it takes no new streams and closes once idle. */
  private usedUp(s: Session): boolean {
    const max = this.o.maxRequestsPerSession ?? 0;
    return max > 0 && s.served >= max;
  }

  /** A stream of the session ended (or never started): give its slot back. */
  private release(s: Session): void {
    s.streams--;
    if (s.streams === 0 && (this.closed || this.usedUp(s) || s.draining)) s.session.close();
  }

  /** A connected session's duration limit and keepalive; both stop when it closes. */
  private startTimers(s: Session): void {
    const schedule = this.o.schedule ?? realTimers;
    const stops: Array<() => void> = [];
    const max = this.o.maxSessionDurationMs ?? 0;
    if (max > 0) stops.push(schedule(max, () => this.drain(s)));
    const ka = this.o.keepAlive;
    if (ka && ka.intervalMs > 0 && ka.timeoutMs > 0) stops.push(keepAlive(s.session, ka, schedule));
    s.session.once('close', () => {
      for (const stop of stops) stop();
    });
  }

  /**
   * Past its duration: no new streams (Envoy drains the connection), closed once the last stream
   * ends. Closed through `release` rather than now: a stream slot may be reserved but not opened.
   */
  private drain(s: Session): void {
    s.draining = true;
    this.retire(s);
    if (s.streams === 0) s.session.close();
  }

  /** Streams a session may carry at once: the server's limit, capped by the cluster's. */
  private streamLimit(s: Session): number {
    const server = s.session.remoteSettings.maxConcurrentStreams ?? 100;
    const own = this.o.maxConcurrentStreams ?? 0;
    return own > 0 ? Math.min(own, server) : server;
  }

  /**
   * A session with room for another stream, for this server name, with that stream's slot
   * reserved; opened when there is none.
   */
  private async session(servername: string | undefined): Promise<Session> {
    if (this.closed) throw Object.assign(new Error('upstream closed'), { code: 'UPSTREAM_RESET' });
    for (;;) {
      const s = this.sessions.find((x) => x.servername === servername && !x.session.closed && !x.session.destroyed && x.streams < this.streamLimit(x));
      if (s) {
        s.streams++;
        s.served++;
        if (this.usedUp(s)) this.retire(s);
        return s;
      }
      const key = servername ?? '';
      let pending = this.connecting.get(key);
      if (!pending) {
        pending = this.open(servername).finally(() => this.connecting.delete(key));
        this.connecting.set(key, pending);
      }
      await pending; // then look again: others may have filled it
    }
  }

  private open(servername: string | undefined, socket?: Socket): Promise<Session> {
    return new Promise((resolve, reject) => {
      const conn = socket ?? this.o.connect(servername);
      const session = h2connect(`${this.o.scheme}://${this.o.authority}`, { createConnection: () => conn, settings: { enablePush: false } });
      const entry: Session = { session, servername, streams: 0, served: 0, draining: false };
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })), this.o.connectTimeoutMs ?? CONNECT_TIMEOUT_MS);
      // A connection error (refused, TLS) comes as the socket's error, through the session.
      session.on('error', (err) => fail(err));
      conn.once('error', (err) => fail(err));
      const ready = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.sessions.push(entry);
        this.startTimers(entry);
        resolve(entry);
      };
      session.once('connect', ready);
      session.once('close', () => {
        fail(Object.assign(new Error('HTTP/2 session closed'), { code: 'UPSTREAM_RESET' }));
        const i = this.sessions.indexOf(entry);
        if (i >= 0) this.sessions.splice(i, 1);
      });
      // A GOAWAY: no new streams on this session; those in flight finish. A graceful shutdown
      // sends two (the second with the real last stream id), so every one is heard.
      session.on('goaway', (_code: number, lastStreamId: number) => {
        entry.goawayLastStreamId = Math.min(lastStreamId, entry.goawayLastStreamId ?? lastStreamId);
        const i = this.sessions.indexOf(entry);
        if (i >= 0) this.sessions.splice(i, 1);
      });
      const idle = this.o.idleMs ?? IDLE_MS;
      if (idle > 0) {
        session.setTimeout(idle, () => {
          if (entry.streams === 0) session.close();
        });
      }
      session.unref();
    });
  }
}

/**
 * PINGs the session every `intervalMs` (counted from the last ACK, as Envoy does) and destroys it
 * when a PING goes unanswered for `timeoutMs`: a peer gone silent (a dead host, a dropped NAT
 * entry) fails its streams as resets at once, instead of when TCP gives up, and the next request
 * opens a new session. Returns a function that stops it.
 */
function keepAlive(session: ClientHttp2Session, ka: { intervalMs: number; timeoutMs: number }, schedule: Schedule): () => void {
  let stop = schedule(ka.intervalMs, ping);
  function ping(): void {
    if (session.destroyed) return;
    stop = schedule(ka.timeoutMs, () => {
      session.destroy(Object.assign(new Error(`HTTP/2 keepalive: no PING ACK within ${ka.timeoutMs} ms`), { code: 'UPSTREAM_RESET' }));
    });
    const stopTimeout = stop;
    session.ping((err) => {
      if (err) return; // the session went away meanwhile
      stopTimeout();
      stop = schedule(ka.intervalMs, ping);
    });
  }
  return () => stop();
}

/**
 * Did the server refuse the stream unprocessed (RFC 9113 §8.7)? A RST_STREAM with REFUSED_STREAM
 * says so, and so does a GOAWAY whose last stream id is below the stream's: nghttp2 closes such
 * streams with REFUSED_STREAM after a NO_ERROR GOAWAY, but node destroys the session at once on a
 * GOAWAY with an error code, and the streams then carry that code, so the id is compared too.
 */
function refusedStream(stream: ClientHttp2Stream, s: Session): boolean {
  if (stream.rstCode === constants.NGHTTP2_REFUSED_STREAM) return true;
  const last = s.goawayLastStreamId;
  return last !== undefined && (stream.id === undefined || stream.id > last);
}

/** One request on one stream: resolves at the response headers; the body ends only on a clean close. */
function exchange(stream: ClientHttp2Stream, r: UpstreamRequest, s: Session): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    let responded = false;
    let ended = false;
    const trailers: Record<string, string | string[] | undefined> = {};
    const body = new H2Body(stream);

    const onAbort = () => {
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      const err = Object.assign(new Error('request aborted'), { name: 'AbortError', code: 'UND_ERR_ABORTED' });
      if (!responded) reject(err);
      else body.destroy(err);
    };
    r.signal?.addEventListener('abort', onAbort, { once: true });

    if (r.body) {
      const source = r.body;
      source.on('error', () => {
        if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
      });
      source.pipe(stream);
      stream.once('close', () => source.unpipe(stream));
    }

    stream.on('response', (headers: IncomingHttpHeaders, flags: number) => {
      responded = true;
      const status = Number(headers[':status']);
      const out: Record<string, string | string[] | undefined> = {};
      for (const [k, v] of Object.entries(headers)) if (k.charCodeAt(0) !== 58) out[k] = v;
      // (`stream.endAfterHeaders` is not set yet when 'response' is emitted; the frame's flags are.)
      resolve({ statusCode: status, headers: out, body, trailers, trailersOnly: (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 });
    });
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      for (const [k, v] of Object.entries(t)) if (k.charCodeAt(0) !== 58) trailers[k] = v;
    });
    stream.on('data', (c: Buffer) => {
      if (!body.push(c)) stream.pause();
    });
    stream.on('end', () => (ended = true));
    stream.on('error', () => {}); // reported through 'close' and rstCode
    stream.on('close', () => {
      r.signal?.removeEventListener('abort', onAbort);
      const clean = ended && (stream.rstCode === undefined || stream.rstCode === constants.NGHTTP2_NO_ERROR);
      if (!responded) {
        const refused = refusedStream(stream, s);
        const what = refused ? 'refused the stream unprocessed' : 'closed the stream before answering';
        reject(Object.assign(new Error(`upstream ${what} (HTTP/2 error ${stream.rstCode})`), { code: refused ? 'UPSTREAM_REFUSED_STREAM' : 'UPSTREAM_RESET' }));
        return;
      }
      if (clean) body.push(null);
      else if (!body.destroyed) body.destroy(Object.assign(new Error(`upstream reset the stream (HTTP/2 error ${stream.rstCode})`), { code: 'UPSTREAM_RESET' }));
    });
  });
}

/** The response body: backpressure reaches the stream; destroying it cancels the stream. */
class H2Body extends UpstreamBody {
  private readonly stream: ClientHttp2Stream;
  constructor(stream: ClientHttp2Stream) {
    super();
    this.stream = stream;
  }
  override _read(): void {
    this.stream.resume();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.stream.closed) this.stream.close(constants.NGHTTP2_CANCEL);
    cb(err);
  }
}

/** The host name of an authority, for SNI (undefined for an IP address). */
export function hostName(authority: string): string | undefined {
  const host = authority.startsWith('[') ? authority.slice(1, authority.indexOf(']')) : authority.replace(/:\d+$/, '');
  return /^[\d.]+$/.test(host) || host.includes(':') ? undefined : host;
}
