// Listeners: one TCP port that speaks HTTP/1.1 and HTTP/2 cleartext (prior knowledge), told apart
// by the HTTP/2 connection preface, as Envoy's HTTP connection manager with codec_type AUTO does —
// and, on a sidecar's inbound listener, mTLS on the same port.
//
// Each accepted connection is read until its first bytes either are the preface (`PRI * HTTP/2.0
// …`) or cannot be; the bytes read are put back and the connection is handed to a node:http2
// server or to the node:http server. Both call the same request handler: node's HTTP/2
// compatibility API (Http2ServerRequest/Response) offers what the pipeline uses of
// IncomingMessage/ServerResponse, once `host` carries the `:authority`.
//
// With `security` (the inbound listener), the first byte tells a TLS ClientHello (0x16, a TLS
// handshake record) from plaintext, as Envoy's TLS inspector does, and PeerAuthentication decides
// per connection: STRICT resets plaintext, DISABLE resets TLS, PERMISSIVE takes both. A TLS
// connection is verified (tls.ts) and then served by ALPN: `h2` to the HTTP/2 server, anything
// else to the HTTP/1.1 one.

import { createServer as createTcpServer, type Server as TcpServer, type Socket, type AddressInfo } from 'node:net';
import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttp2Server, Http2ServerResponse, type Http2ServerRequest, type ServerHttp2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { MtlsMode } from '../wire/snapshot.ts';

/** RFC 9113 §3.4: what a client speaking HTTP/2 with prior knowledge sends first. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A connection that says nothing for this long is closed (as Node's own headers timeout). */
const SNIFF_TIMEOUT_MS = 60_000;

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;
/** An HTTP/1.1 `Upgrade` (WebSocket) or `CONNECT` request: the socket is the handler's from here. */
export type SocketHandler = (req: IncomingMessage, socket: Socket, head: Buffer) => void;

export interface ListenerHandlers {
  request: RequestHandler;
  upgrade?: SocketHandler;
  connect?: SocketHandler;
}

/** What an inbound listener accepts: asked per connection, so a new snapshot applies to the next one. */
export interface ListenerSecurity {
  mode(): MtlsMode;
  /** The mTLS handshake (tls.ts); absent when the proxy has no workload identity (plaintext only). */
  tls?: { accept(socket: Socket): void };
}

/** The first byte of a TLS handshake record (a ClientHello). */
const TLS_HANDSHAKE = 0x16;

export interface MeshListener {
  /** Sniff a connection and serve it: used for every accepted socket and for CONNECT tunnels. */
  accept(socket: Socket): void;
  /** Serve a connection whose mTLS handshake is done and whose peer is verified. */
  serveTls(socket: TLSSocket): void;
  listen(bind: string): Promise<string>;
  /** Stop accepting; close idle connections and send GOAWAY to HTTP/2 sessions; resolve when all are gone. */
  close(): Promise<void>;
}

/**
 * The HTTP/2 compatibility API's response, with `writableFinished` and `destroyed` as HTTP/1.1
 * means them. The pipeline tells a client that left from a finished answer by `writableFinished`
 * on 'close'; the compatibility API reports true once the stream is closed, even by the client's
 * RST_STREAM. Finished means: ended by us, not reset. And it has no `destroyed` of its own, which
 * the pipeline reads to know the client is gone; its stream has. (A class rather than properties
 * defined on each response: a getter added per response gives every response a hidden class of
 * its own, which V8 keeps reachable from the shared transition tree until a full collection.)
 */
export class MeshHttp2Response extends Http2ServerResponse {}
// On the prototype, once (node's typings declare `writableFinished` a plain property, which a class accessor may not override).
Object.defineProperties(MeshHttp2Response.prototype, {
  writableFinished: {
    get(this: Http2ServerResponse) {
      return this.writableEnded && !this.stream.rstCode;
    },
  },
  destroyed: {
    get(this: Http2ServerResponse) {
      return this.stream.destroyed;
    },
  },
});

export function meshListener(h: ListenerHandlers, security?: ListenerSecurity): MeshListener {
  const http1 = createHttp1Server(
    {
      // Streams (LLM tokens) can run for minutes: no whole-request deadline from Node itself.
      requestTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 65_000,
      noDelay: true,
    },
    h.request,
  );
  if (h.upgrade) http1.on('upgrade', h.upgrade);
  if (h.connect) http1.on('connect', h.connect);

  const http2 = createHttp2Server({ settings: { enablePush: false }, Http2ServerResponse: MeshHttp2Response });
  http2.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    // The pipeline reads the authority from `host`; in HTTP/2 it is `:authority` (RFC 9113 §8.3.1).
    const authority = req.headers[':authority'];
    if (authority !== undefined) req.headers.host = authority;
    h.request(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
  const sessions = new Set<ServerHttp2Session>();
  http2.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  });
  // A peer's protocol error ends its session; it must not end the proxy.
  http2.on('sessionError', () => {});

  const accept = (socket: Socket) => {
    let seen: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), SNIFF_TIMEOUT_MS).unref();
    const done = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('error', onGone);
      socket.off('close', onGone);
    };
    const onGone = () => {
      done();
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      if (security && seen.length === 0 && chunk.length > 0 && !(socket as { encrypted?: boolean }).encrypted) {
        const mode = security.mode();
        const tls = chunk[0] === TLS_HANDSHAKE;
        if (tls ? mode === 'DISABLE' || !security.tls : mode === 'STRICT') {
          done();
          socket.resetAndDestroy();
          return;
        }
        if (tls) {
          done();
          socket.pause();
          socket.unshift(chunk);
          socket.on('error', () => socket.destroy());
          security.tls!.accept(socket);
          return;
        }
      }
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
      const n = Math.min(seen.length, H2_PREFACE.length);
      const couldBeH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
      if (couldBeH2 && seen.length < H2_PREFACE.length) return; // not enough yet to tell
      done();
      socket.pause();
      socket.unshift(seen);
      if (couldBeH2) {
        http2.emit('connection', socket);
      } else {
        http1.emit('connection', socket);
        socket.resume();
      }
    };
    socket.on('data', onData);
    socket.on('end', onGone);
    socket.on('error', onGone);
    socket.on('close', onGone);
  };

  const tcp: TcpServer = createTcpServer({ noDelay: true }, accept);

  return {
    accept,
    serveTls(socket: TLSSocket) {
      // ALPN decides; a client that offered none speaks HTTP/1.1.
      if (socket.alpnProtocol === 'h2') http2.emit('connection', socket);
      else http1.emit('connection', socket);
    },
    listen(bind) {
      const colon = bind.lastIndexOf(':');
      const host = bind.slice(0, colon);
      const port = Number(bind.slice(colon + 1));
      return new Promise((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen(port, host, () => {
          tcp.off('error', reject);
          const a = tcp.address() as AddressInfo;
          resolve(`${a.address}:${a.port}`);
        });
      });
    },
    close() {
      return new Promise<void>((resolve) => {
        tcp.close(() => resolve());
        // Not listening itself, so it answers ERR_SERVER_NOT_RUNNING; it still closes idle connections.
        http1.close(() => {});
        http1.closeIdleConnections();
        for (const s of sessions) s.close();
      });
    },
  };
}
