// A proxy process driven by a test control plane: push any snapshot, see its ACK or NACK.

import { fileURLToPath } from 'node:url';
import { startPushServer, type ProxyConnection, type PushServer } from '../../src/control/push-server.ts';
import { WIRE_FORMAT, type ClusterConfig, type ProxySnapshot, type RouteConfig, type UpstreamProtocol } from '../../src/wire/snapshot.ts';
import { start, type Proc } from './process.ts';

const PROXY_MAIN = fileURLToPath(new URL('../../src/proxy/main.ts', import.meta.url));

export interface Harness {
  proc: Proc;
  push: PushServer;
  conn: ProxyConnection;
  outbound: string;
  inbound?: string;
  admin: string;
  /** Push a snapshot and wait for the proxy's answer. */
  send(snapshot: ProxySnapshot): Promise<{ type: 'ack' | 'nack'; version: number; error?: string }>;
  close(): Promise<void>;
}

export async function startHarness(opts: { inbound?: boolean; env?: Record<string, string> } = {}): Promise<Harness> {
  let onConnect: (c: ProxyConnection) => void = () => {};
  let onAnswer: (a: { type: 'ack' | 'nack'; version: number; error?: string }) => void = () => {};
  const push = await startPushServer(
    { host: '127.0.0.1', port: 0 },
    {
      authenticate: (h) => (h.token === 'secret' ? undefined : 'bad token'),
      connected: (c) => onConnect(c),
      ack: (_id, version) => onAnswer({ type: 'ack', version }),
      nack: (_id, version, error) => onAnswer({ type: 'nack', version, error }),
      disconnected: () => {},
      log: () => {},
    },
  );
  const connected = new Promise<ProxyConnection>((r) => (onConnect = r));
  const proc = start(process.execPath, [PROXY_MAIN], {
    env: {
      ...process.env,
      WEFT_PROXY_ID: 'p1',
      WEFT_PROXY_TOKEN: 'secret',
      WEFT_CONTROL: push.address,
      WEFT_INBOUND: opts.inbound ? '127.0.0.1:0' : '',
      ...opts.env,
    },
  });
  const conn = await connected;
  return {
    proc,
    push,
    conn,
    outbound: conn.hello.listeners.outbound!,
    inbound: conn.hello.listeners.inbound,
    admin: conn.hello.listeners.admin,
    send(snapshot) {
      const answered = new Promise<{ type: 'ack' | 'nack'; version: number; error?: string }>((r) => (onAnswer = r));
      conn.send(snapshot);
      return answered;
    },
    async close() {
      await proc.stop();
      await push.close();
    },
  };
}

/** A snapshot with one service `svc` (host `svc.default.svc.cluster.local`) and the given routes/clusters. */
export function snapshotFor(
  version: number,
  endpoints: Array<{ port: number; host?: string; weight?: number }>,
  extra: {
    routes?: RouteConfig[];
    clusters?: ClusterConfig[];
    inbound?: { appHost: string; appPort: number; protocol?: UpstreamProtocol };
    /** How the proxy speaks to the endpoints (default HTTP/1.1). */
    protocol?: UpstreamProtocol;
  } = {},
): ProxySnapshot {
  const cluster = 'outbound|80||svc.default.svc.cluster.local';
  return {
    wire: WIRE_FORMAT,
    version,
    proxy: { id: 'p1', kind: 'sidecar', workload: 'client', namespace: 'default', app: 'client', version: 'v1', serviceAccount: 'default', identity: 'spiffe://cluster.local/ns/default/sa/default', labels: {} },
    inbound: extra.inbound && { protocol: 'http1', ...extra.inbound },
    outbound: {
      virtualHosts: [
        {
          name: 'svc.default.svc.cluster.local:80',
          domains: ['svc', 'svc:80'],
          routes: extra.routes ?? [{ name: 'r', match: [], action: { kind: 'route', destinations: [{ cluster, weight: 1 }] } }],
        },
      ],
    },
    clusters: [
      {
        name: cluster,
        service: { host: 'svc.default.svc.cluster.local', name: 'svc', namespace: 'default', port: 80 },
        lb: { simple: 'ROUND_ROBIN' },
        protocol: extra.protocol ?? 'http1',
        endpoints: endpoints.map((e) => ({ host: e.host ?? '127.0.0.1', port: e.port, weight: e.weight ?? 1, workload: 'up', namespace: 'default', app: 'up', version: 'v1', identity: 'x', sidecar: false })),
      },
      ...(extra.clusters ?? []),
    ],
  };
}
