// The proxy assembled top to bottom: listeners → pipeline → upstream, fed by the control stream.

import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock } from '../core/clock.ts';
import { systemRandom, type Random } from '../core/random.ts';
import type { ProxySnapshot } from '../wire/snapshot.ts';
import { compileSnapshot, type RuntimeConfig } from './compile.ts';
import { EndpointStates } from './upstream/endpoints.ts';
import { MeshMetrics } from './observe/metrics.ts';
import { outboundHandler } from './pipeline.ts';
import { inboundHandler } from './inbound.ts';
import { adminServer } from './admin.ts';
import { connectControlPlane } from './control-client.ts';
import type { AccessLog } from './observe/access-log.ts';

export interface ProxyOptions {
  id: string;
  token: string;
  /** `http://host:port` of the control plane. */
  control: string;
  /** `host:port` to bind; port 0 lets the OS choose. Omit inbound for the edge. */
  outbound: string;
  inbound?: string;
  admin: string;
  accessLog?: AccessLog;
  log?: (line: string) => void;
  clock?: Clock;
  random?: Random;
}

export interface RunningProxy {
  listeners: { outbound: string; inbound?: string; admin: string };
  current(): RuntimeConfig | undefined;
  close(): Promise<void>;
}

export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const log = o.log ?? ((l: string) => process.stderr.write(`[proxy ${o.id}] ${l}\n`));
  const endpoints = new EndpointStates();
  const metrics = new MeshMetrics();
  const random = o.random ?? systemRandom;
  const clock = o.clock ?? systemClock;
  let current: RuntimeConfig | undefined;
  let rejected: { version: number; error: string } | undefined;

  const outbound = outboundHandler({ current: () => current, random, accessLog: o.accessLog });
  const outboundServer = meshServer((req, res) => void outbound(req, res, (req.socket as TunnelSocket).tunnelTarget));
  // HTTP clients that tunnel even plain HTTP through a proxy (CONNECT host:80): answer 200 and
  // read the tunnelled HTTP/1.1 requests as if they had come straight in.
  outboundServer.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    (socket as TunnelSocket).tunnelTarget = req.url;
    if (head.length > 0) socket.unshift(head);
    outboundServer.emit('connection', socket);
  });

  const servers: Server[] = [outboundServer];
  const listeners: RunningProxy['listeners'] = { outbound: await listen(outboundServer, o.outbound), admin: '' };
  if (o.inbound) {
    const inbound = inboundHandler({ current: () => current, endpoints, metrics, accessLog: o.accessLog });
    const inboundServer = meshServer((req, res) => void inbound(req, res));
    servers.push(inboundServer);
    listeners.inbound = await listen(inboundServer, o.inbound);
  }
  const admin = adminServer({
    current: () => current,
    metrics,
    lastRejected: () => rejected,
    stats: () => ({ id: o.id, listeners, memory: process.memoryUsage() }),
  });
  servers.push(admin);
  listeners.admin = await listen(admin, o.admin);

  const control = connectControlPlane({
    address: o.control,
    hello: { type: 'hello', id: o.id, token: o.token, listeners, pid: process.pid },
    apply(snapshot: ProxySnapshot) {
      try {
        const next = compileSnapshot(snapshot, { endpoints, metrics, random, clock });
        current = next; // the swap: requests in flight keep the tables they started with
        const keep = new Set<string>();
        for (const c of next.snapshot.clusters) for (const e of c.endpoints) keep.add(`${e.host}:${e.port}`);
        if (next.snapshot.inbound) keep.add(`${next.snapshot.inbound.appHost}:${next.snapshot.inbound.appPort}`);
        endpoints.retain(keep);
      } catch (err) {
        rejected = { version: snapshot?.version, error: (err as Error).message };
        throw err;
      }
    },
    log,
  });

  return {
    listeners,
    current: () => current,
    async close() {
      control.close();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeIdleConnections();
            }),
        ),
      );
      await endpoints.closeAll();
    },
  };
}

interface TunnelSocket extends Socket {
  tunnelTarget?: string;
}

function meshServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  return createServer(
    {
      // Streams (LLM tokens) can run for minutes: no whole-request deadline from Node itself.
      requestTimeout: 0,
      headersTimeout: 60_000,
      keepAliveTimeout: 65_000,
      noDelay: true,
    },
    handler,
  );
}

export function listen(server: Server, bind: string): Promise<string> {
  const colon = bind.lastIndexOf(':');
  const host = bind.slice(0, colon);
  const port = Number(bind.slice(colon + 1));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve(`${a.address}:${a.port}`);
    });
  });
}
