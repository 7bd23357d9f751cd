// Push server: proxies hold one HTTP/2 stream each; snapshots go down, ACKs and NACKs come up.

import http2 from 'node:http2';
import { trackedH2Server } from './h2-server.ts';
import type { ControlMessage, ProxyHello, ProxyMessage } from '../wire/snapshot.ts';
import { ndjson, readNdjson } from '../wire/ndjson.ts';

export interface ProxyConnection {
  readonly hello: ProxyHello;
  send(message: ControlMessage): void;
  close(): void;
}

export interface PushHandlers {
  /** Accept or refuse a proxy by its bootstrap credential; return an error text to refuse. */
  authenticate(hello: ProxyHello): string | undefined;
  connected(conn: ProxyConnection): void;
  ack(id: string, version: number): void;
  nack(id: string, version: number, error: string): void;
  disconnected(conn: ProxyConnection): void;
  log(line: string): void;
}

export interface PushServer {
  address: string;
  close(): Promise<void>;
}

export async function startPushServer(bind: { host: string; port: number }, h: PushHandlers): Promise<PushServer> {
  const { server, listen } = trackedH2Server();
  server.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/v1/stream' || headers[':method'] !== 'POST') {
      stream.respond({ ':status': 404 });
      stream.end('the push server only serves POST /v1/stream\n');
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson' });
    let conn: ProxyConnection | undefined;
    readNdjson(
      stream,
      (raw) => {
        const msg = raw as ProxyMessage;
        if (!conn) {
          if (msg.type !== 'hello') {
            stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
            return;
          }
          const refusal = h.authenticate(msg);
          if (refusal) {
            h.log(`refused proxy ${msg.id}: ${refusal}`);
            stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
            return;
          }
          conn = {
            hello: msg,
            send: (message) => {
              if (!stream.destroyed) stream.write(ndjson(message));
            },
            close: () => stream.close(),
          };
          h.connected(conn);
        } else if (msg.type === 'ack') h.ack(conn.hello.id, msg.version);
        else if (msg.type === 'nack') h.nack(conn.hello.id, msg.version, msg.error);
      },
      (line) => h.log(`unreadable message from a proxy: ${line.slice(0, 80)}`),
    );
    stream.on('error', () => {});
    stream.on('close', () => {
      if (conn) h.disconnected(conn);
    });
  });
  return listen(bind);
}
