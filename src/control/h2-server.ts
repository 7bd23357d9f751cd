// A loopback HTTP/2 (h2c) server for the control plane's endpoints: listen, and close every session.

import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface H2Endpoint {
  /** `http://host:port`. */
  address: string;
  close(): Promise<void>;
}

/**
 * An h2c server that remembers its sessions, so closing it ends the proxies' long-lived streams
 * instead of waiting for them. A broken session is the peer's problem, never a crash here.
 */
export function trackedH2Server(): { server: http2.Http2Server; listen(bind: { host: string; port: number }): Promise<H2Endpoint> } {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => {});
  });
  server.on('sessionError', () => {});
  return {
    server,
    async listen(bind) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(bind.port, bind.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const a = server.address() as AddressInfo;
      return {
        address: `http://${a.address}:${a.port}`,
        close: () =>
          new Promise<void>((resolve) => {
            for (const s of sessions) s.destroy();
            server.close(() => resolve());
          }),
      };
    },
  };
}
