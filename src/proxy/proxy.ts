// The proxy assembled top to bottom: workload identity → listeners → pipeline → upstream, fed by
// the control stream.

import type { Server, IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { systemClock, type Clock } from '../core/clock.ts';
import { systemRandom, type Random } from '../core/random.ts';
import type { ControlMessage, ProxySnapshot } from '../wire/snapshot.ts';
import { withEndpoints } from './endpoints-update.ts';
import { withDelta } from './config-delta.ts';
import { compileSnapshot, type CompiledCluster, type RuntimeConfig } from './compile.ts';
import { EndpointStates, endpointId } from './upstream/endpoints.ts';
import { checkTransports, H2C, HTTP1 } from './upstream/transport.ts';
import { meshListener, type MeshListener } from './listener.ts';
import { outboundUpgradeHandler } from './websocket.ts';
import { MeshMetrics } from './observe/metrics.ts';
import { outboundHandler } from './pipeline.ts';
import { inboundHandler } from './inbound.ts';
import { adminServer } from './admin.ts';
import { connectControlPlane } from './control-client.ts';
import type { AccessLog } from './observe/access-log.ts';
import { WorkloadIdentity } from './identity.ts';
import { meshTlsClient, meshTlsServer } from './tls.ts';
import { compileInboundPolicy, type InboundPolicy } from './inbound-policy.ts';

export interface ProxyOptions {
  id: string;
  token: string;
  /** `http://host:port` of the control plane. */
  control: string;
  /** `host:port` to bind; port 0 lets the OS choose. Omit inbound for the edge. */
  outbound: string;
  inbound?: string;
  admin: string;
  /**
   * The mesh CA (`http://host:port`) and the SPIFFE ID the bootstrap token was issued for. With
   * both, the proxy gets a workload certificate before it serves anything and speaks mTLS to other
   * sidecars; without, it is plaintext only (a proxy driven by a test harness).
   */
  ca?: string;
  identity?: string;
  accessLog?: AccessLog;
  log?: (line: string) => void;
  /** Called once, when the first configuration is in force (main.ts then tidies up after start-up). */
  configured?: () => void;
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
  let policy: InboundPolicy | undefined;
  let rejected: { version: number; error: string } | undefined;

  // Identity first: nothing is served, and no configuration asked for, before the certificate is in hand.
  let identity: WorkloadIdentity | undefined;
  if (o.ca && o.identity) {
    identity = new WorkloadIdentity({ ca: o.ca, token: o.token, spiffeId: o.identity, log });
    await identity.start();
    endpoints.tls.mesh = meshTlsClient(identity);
  }

  // Every listener speaks HTTP/1.1 and HTTP/2 cleartext on one port (listener.ts).
  const deps = { current: () => current, random, accessLog: o.accessLog };
  const outbound = outboundHandler(deps);
  const outboundUpgrade = outboundUpgradeHandler(deps);
  const tunnelTarget = (req: IncomingMessage) => (req.socket as TunnelSocket).tunnelTarget;
  const outboundListener: MeshListener = meshListener({
    request: (req, res) => void outbound(req, res, tunnelTarget(req)),
    upgrade: (req, socket, head) => void outboundUpgrade(req, socket, head, tunnelTarget(req)),
    // Clients that tunnel even plain HTTP through a proxy (CONNECT host:80; gRPC with
    // http_proxy set): answer 200 and read the tunnelled HTTP/1.1 or HTTP/2 as if it came straight in.
    connect: (req, socket, head) => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      (socket as TunnelSocket).tunnelTarget = req.url;
      if (head.length > 0) socket.unshift(head);
      outboundListener.accept(socket);
    },
  });

  const meshListeners: MeshListener[] = [outboundListener];
  const servers: Server[] = [];
  const listeners: RunningProxy['listeners'] = { outbound: await outboundListener.listen(o.outbound), admin: '' };
  if (o.inbound) {
    const inbound = inboundHandler({ current: () => current, policy: () => policy, endpoints, metrics, accessLog: o.accessLog });
    // PeerAuthentication per connection: until the first snapshot, PERMISSIVE (nothing is served yet).
    const tls = identity ? meshTlsServer(identity, (socket) => inboundListener.serveTls(socket)) : undefined;
    const inboundListener: MeshListener = meshListener(
      {
        request: (req, res) => void inbound.handle(req, res),
        upgrade: (req, socket, head) => void inbound.upgrade(req, socket, head),
      },
      { mode: () => policy?.mode ?? 'PERMISSIVE', tls },
    );
    meshListeners.push(inboundListener);
    listeners.inbound = await inboundListener.listen(o.inbound);
  }
  const admin = adminServer({
    current: () => current,
    metrics,
    lastRejected: () => rejected,
    stats: () => ({ id: o.id, listeners, identity: identity?.status() ?? null, memory: process.memoryUsage() }),
  });
  servers.push(admin);
  listeners.admin = await listen(admin, o.admin);

  const control = connectControlPlane({
    address: o.control,
    hello: { type: 'hello', id: o.id, token: o.token, listeners, pid: process.pid },
    apply(message: ControlMessage) {
      try {
        const snapshot = nextSnapshot(current?.snapshot, message);
        checkTransports(snapshot);
        if (snapshot.trustBundle !== undefined && (!Array.isArray(snapshot.trustBundle) || !snapshot.trustBundle.every((r) => typeof r === 'string')))
          throw new Error('trustBundle is not a list of PEM certificates');
        endpoints.tls.load(snapshot.clusters);
        const nextPolicy = compileInboundPolicy(snapshot);
        // What the new snapshot shares with the current one (all an update does not replace) is reused as compiled.
        const next = compileSnapshot(snapshot, { endpoints, metrics, random, clock }, current);
        // The swap: requests in flight keep the tables they started with.
        const before = current;
        current = next;
        policy = nextPolicy;
        // Trust the bundle's roots from now on (a new signing root also renews the certificate).
        identity?.setTrustBundle(snapshot.trustBundle);
        // Pools no table names any more are closed. An update that removed no cluster and left
        // every cluster it changed with the same endpoints (a weight, a route) cannot have let
        // any go: skip the sweep, which visits every endpoint of the mesh.
        if (before && keepsEndpoints(message, before, next)) return;
        // From the compiled clusters, which hold each endpoint's state (no lookups per endpoint).
        const keep = new Set<string>();
        const addresses = new Set<string>();
        for (const c of next.clusters.values())
          for (const [address, e] of c.byKey) {
            keep.add(e.state.id);
            addresses.add(address);
          }
        const app = next.snapshot.inbound;
        if (app) keep.add(endpointId(app.appHost, app.appPort, app.protocol === 'h2' ? H2C : HTTP1));
        endpoints.retain(keep, addresses);
        if (!before) o.configured?.();
      } catch (err) {
        rejected = { version: message?.version, error: (err as Error).message };
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
      identity?.close();
      await Promise.all([
        ...meshListeners.map((l) => l.close()),
        ...servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.close(() => resolve());
              s.closeIdleConnections();
            }),
        ),
      ]);
      await endpoints.closeAll();
    },
  };
}

/** Whether two compiled versions of a cluster use the very same endpoint states. */
function sameEndpoints(a: CompiledCluster | undefined, b: CompiledCluster | undefined): boolean {
  if (!a || !b || a.byKey.size !== b.byKey.size) return false;
  for (const [address, e] of b.byKey) if (a.byKey.get(address)?.state !== e.state) return false;
  return true;
}

/** The snapshot a message from the control plane makes of the current one. */
function nextSnapshot(current: ProxySnapshot | undefined, m: ControlMessage): ProxySnapshot {
  if ('type' in m && m.type === 'endpoints') return withEndpoints(current, m);
  if ('type' in m && m.type === 'delta') return withDelta(current, m);
  return m as ProxySnapshot;
}

/** Whether an update kept every endpoint `before` had: no cluster removed, each changed one with the same endpoint states. */
function keepsEndpoints(m: ControlMessage, before: RuntimeConfig, next: RuntimeConfig): boolean {
  if (!('type' in m)) return false;
  if (m.type === 'delta' && m.removedClusters.length > 0) return false;
  return m.clusters.every((c) => sameEndpoints(before.clusters.get(c.name), next.clusters.get(c.name)));
}

interface TunnelSocket extends Socket {
  tunnelTarget?: string;
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
