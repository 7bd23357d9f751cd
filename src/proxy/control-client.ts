// The proxy's side of the configuration stream: say hello, receive snapshots, ACK or NACK each.

import http2 from 'node:http2';
import type { ControlMessage, ProxyHello, ProxyMessage } from '../wire/snapshot.ts';
import { ndjson, readNdjson } from '../wire/ndjson.ts';

export interface ControlClientOptions {
  /** `http://host:port` of the control plane's push server. */
  address: string;
  hello: ProxyHello;
  /** Compile and install a snapshot or an endpoint update; throw to NACK (the proxy keeps its last good configuration). */
  apply(message: ControlMessage): void;
  log(line: string): void;
}

/**
 * Keeps one HTTP/2 stream open to the control plane, reconnecting with capped backoff when it
 * drops. While disconnected the proxy keeps serving on its last good configuration.
 */
export function connectControlPlane(o: ControlClientOptions): { close(): void } {
  let closed = false;
  let session: http2.ClientHttp2Session | undefined;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;

  const retry = () => {
    session?.destroy();
    session = undefined;
    if (closed) return;
    const delay = Math.min(2000, 100 * 2 ** attempt++);
    timer = setTimeout(open, delay);
  };

  function open(): void {
    if (closed) return;
    const s = http2.connect(o.address);
    session = s;
    s.on('error', (err) => {
      if (attempt === 0 || attempt % 10 === 0) o.log(`control plane unreachable at ${o.address}: ${err.message}; retrying`);
    });
    s.on('close', retry);
    const stream = s.request({ ':method': 'POST', ':path': '/v1/stream', 'content-type': 'application/x-ndjson' });
    const send = (m: ProxyMessage) => {
      if (!stream.destroyed) stream.write(ndjson(m));
    };
    stream.on('response', (headers) => {
      if (headers[':status'] !== 200) {
        o.log(`control plane refused the stream with status ${headers[':status']}`);
        return;
      }
      attempt = 0;
    });
    readNdjson(
      stream,
      (msg) => {
        const snap = msg as ControlMessage;
        try {
          o.apply(snap);
          send({ type: 'ack', version: snap.version });
        } catch (err) {
          const error = (err as Error).message;
          o.log(`rejected configuration version ${snap.version}: ${error}; keeping the last good one`);
          send({ type: 'nack', version: typeof snap.version === 'number' ? snap.version : -1, error });
        }
      },
      (line, err) => {
        o.log(`unreadable message from control plane (${err.message}): ${line.slice(0, 80)}`);
        send({ type: 'nack', version: -1, error: `unreadable message: ${err.message}` });
      },
    );
    stream.on('error', () => {});
    stream.on('close', () => s.close());
    send(o.hello);
  }

  open();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      session?.destroy();
    },
  };
}
