// Supervisor: runs each Workload replica as an app process with its own sidecar proxy process.
//
// Order per replica: start the sidecar → it connects and says where it listens → start the app
// with HTTP_PROXY pointing at the sidecar → probe the app's port → mark the endpoint ready.
// An app that exits is reported with its last output and restarted with backoff; the rest of the
// mesh keeps running.

import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { appPort as pickAppPort, listenerInGroup, portFree } from './app-port.ts';
import { fileURLToPath } from 'node:url';
import type { Resource, WorkloadSpec } from '../api/types.ts';
import type { ProxyNode } from '../wire/snapshot.ts';
import type { ControlPlane } from './control-plane.ts';
import { spawnPrefixed, stopProcess, type Spawned } from './processes.ts';
import { spiffe } from '../translate/identity.ts';
import { edgeProxyNode } from '../translate/gateways.ts';
import { parseSpiffeId } from '../security/spiffe.ts';

/** The sidecar's launcher (CommonJS: it runs the proxy from the bundle in `proxyCode`, or from source without one). */
const PROXY_MAIN = fileURLToPath(new URL('../../bin/weft-proxy.cjs', import.meta.url));
const MAX_BACKOFF_MS = 30_000;

interface Replica {
  id: string;
  specKey: string;
  resource: Resource<WorkloadSpec>;
  index: number;
  node: ProxyNode;
  token: string;
  appPort: number;
  proxy?: Spawned;
  app?: Spawned;
  outbound?: string;
  inbound?: string;
  admin?: string;
  backoffMs: number;
  /** A service selects it, so it is ready only when its port accepts connections. */
  serves: boolean;
  /** Has the app either come up or failed at least once (for `weft: ready`)? */
  settled: boolean;
  stopping: boolean;
  restartTimer?: NodeJS.Timeout;
}

export interface SupervisorOptions {
  control: ControlPlane;
  controlAddress: string;
  log(line: string): void;
  /** Where app and proxy output goes, already prefixed. */
  output(line: string): void;
  accessLog?: string;
  /** The proxy's modules with types stripped (control/proxy-code.ts); absent: proxies strip their own. */
  proxyCode?: string;
  /**
   * The mesh CA: its address (WEFT_CA) and the bootstrap tokens it accepts. Each proxy's token is
   * issued for its workload's identity, handed over in WEFT_PROXY_TOKEN (the same token the push
   * server checks) and revoked when the proxy goes for good. Without it, tokens are random and
   * proxies run without certificates.
   */
  ca?: {
    address: string;
    issue(identity: { namespace: string; serviceAccount: string }): string;
    revoke(token: string): void;
  };
}

export class Supervisor {
  private readonly replicas = new Map<string, Replica>();
  private edge?: { proxy: Spawned; node: ProxyNode; token: string; bind: string };
  private readonly o: SupervisorOptions;
  private readonly connectedWaiters = new Map<string, (listeners: { outbound?: string; inbound?: string; admin: string }) => void>();

  constructor(o: SupervisorOptions) {
    this.o = o;
  }

  /** The control plane tells us when a proxy connects, so we know where its sidecar listens. */
  proxyConnected(id: string, listeners: { outbound?: string; inbound?: string; admin: string }): void {
    if (id === this.edge?.node.id) this.edgeAdmin = listeners.admin;
    this.connectedWaiters.get(id)?.(listeners);
  }

  /** Start the edge proxy on `bind`; resolves when it has connected. */
  async startEdge(bind: string): Promise<void> {
    const node = edgeProxyNode();
    const token = this.token(node);
    this.o.control.registerProxy({ node, token });
    const connected = this.waitConnected(node.id);
    const proxy = this.spawnProxy(node, token, { WEFT_OUTBOUND: bind });
    this.edge = { proxy, node, token, bind };
    const exit = proxy.exited.then((e) => {
      throw new Error(`the edge proxy exited (${e.code ?? e.signal}): ${proxy.tail().join(' | ')}`);
    });
    await Promise.race([connected, exit]);
    void exit.catch(() => {}); // from here on, watchEdge reports and restarts
    this.watchEdge(proxy);
  }

  private edgeAdmin?: string;
  private stopping = false;

  /** Once up, an edge that dies is restarted on the same addresses, like a sidecar. */
  private watchEdge(proxy: Spawned): void {
    void proxy.exited.then((e) => {
      const edge = this.edge;
      if (this.stopping || !edge || edge.proxy !== proxy) return;
      this.o.log(`the edge proxy exited (${e.code ?? e.signal}): ${proxy.tail().join(' | ')}; restarting it`);
      setTimeout(() => {
        if (this.stopping) return;
        const again = this.spawnProxy(edge.node, edge.token, { WEFT_OUTBOUND: edge.bind, WEFT_ADMIN: this.edgeAdmin ?? '127.0.0.1:0' });
        this.edge = { ...edge, proxy: again };
        this.watchEdge(again);
      }, 500);
    });
  }

  /**
   * Make the running replicas match the Workload resources. `serves(w)` says whether a service
   * selects the workload: those are ready when their port accepts connections; the others (a
   * client, a batch job) are ready once started, as a Kubernetes pod without a probe is.
   */
  reconcile(workloads: readonly Resource<WorkloadSpec>[], serves: (w: Resource<WorkloadSpec>) => boolean): void {
    const desired = new Map<string, { r: Resource<WorkloadSpec>; index: number; key: string; serves: boolean }>();
    for (const r of workloads) {
      const key = JSON.stringify([r.spec, r.metadata.labels]);
      for (let i = 0; i < (r.spec.replicas ?? 1); i++)
        desired.set(`${r.metadata.namespace}/${r.metadata.name}-${i}`, { r, index: i, key, serves: serves(r) });
    }
    for (const [id, rep] of this.replicas) {
      const want = desired.get(id);
      if (!want || want.key !== rep.specKey) {
        this.o.log(`${want ? 'restarting' : 'stopping'} workload ${id}${want ? ' (its spec changed)' : ''}`);
        void this.stopReplica(rep);
      }
    }
    for (const [id, want] of desired) {
      const rep = this.replicas.get(id);
      if (!rep || rep.specKey !== want.key) void this.startReplica(id, want.r, want.index, want.key, want.serves);
      else rep.serves = want.serves;
    }
  }

  /** Resolves when every replica's app has come up or failed once, or after `timeoutMs`. */
  async whenStarted(timeoutMs: number): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ([...this.replicas.values()].every((r) => r.settled)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    return [...this.replicas.values()].filter((r) => !r.settled).map((r) => r.id);
  }

  pids(): Record<string, { proxy?: number; app?: number; appPort: number }> {
    const out: Record<string, { proxy?: number; app?: number; appPort: number }> = {};
    for (const r of this.replicas.values()) out[r.id] = { proxy: r.proxy?.child.pid, app: r.app?.child.pid, appPort: r.appPort };
    return out;
  }

  async stopAll(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.replicas.values()].map((r) => this.stopReplica(r)));
    if (this.edge) {
      this.o.control.removeProxy(this.edge.node.id);
      await stopProcess(this.edge.proxy, 5000, false);
      this.o.ca?.revoke(this.edge.token);
    }
  }

  private async startReplica(id: string, r: Resource<WorkloadSpec>, index: number, key: string, serves: boolean): Promise<void> {
    const labels = { ...r.spec.labels };
    const sa = r.spec.serviceAccount ?? 'default';
    const node: ProxyNode = {
      id,
      kind: 'sidecar',
      workload: r.metadata.name,
      namespace: r.metadata.namespace,
      app: labels.app ?? r.metadata.name,
      version: labels.version ?? 'unknown',
      serviceAccount: sa,
      identity: spiffe(r.metadata.namespace, sa),
      labels,
    };
    // Registered before any await, so whenStarted() sees every replica reconcile() asked for.
    const rep: Replica = {
      id,
      specKey: key,
      resource: r,
      index,
      node,
      token: this.token(node),
      appPort: r.spec.port ?? 0,
      backoffMs: 1000,
      serves,
      settled: false,
      stopping: false,
    };
    this.replicas.set(id, rep);
    if (rep.appPort === 0) {
      try {
        rep.appPort = await pickAppPort();
      } catch (err) {
        this.o.log(`workload ${id}: could not find a free port: ${(err as Error).message}`);
        rep.settled = true;
        return;
      }
    }
    const appPort = rep.appPort;
    this.o.control.registerProxy({
      node,
      token: rep.token,
      app: { host: '127.0.0.1', port: appPort },
      instance: { id, workload: node.workload, namespace: node.namespace, labels, serviceAccount: sa, ready: false },
    });
    await this.runProxy(rep);
    if (!rep.stopping) await this.runApp(rep);
  }

  private async runProxy(rep: Replica): Promise<void> {
    const connected = this.waitConnected(rep.id);
    // A restarted sidecar takes the same ports again, so the app's HTTP_PROXY stays right.
    rep.proxy = this.spawnProxy(rep.node, rep.token, {
      WEFT_OUTBOUND: rep.outbound ?? '127.0.0.1:0',
      WEFT_INBOUND: rep.inbound ?? '127.0.0.1:0',
      WEFT_ADMIN: rep.admin ?? '127.0.0.1:0',
    });
    const proxy = rep.proxy;
    void proxy.exited.then((e) => {
      if (rep.stopping || rep.proxy !== proxy) return;
      this.o.log(`sidecar of ${rep.id} exited (${e.code ?? e.signal}); restarting it`);
      setTimeout(async () => {
        await this.runProxy(rep);
        // A sidecar that died before its app started: start the app now.
        if (!rep.app && !rep.stopping) await this.runApp(rep);
      }, 500);
    });
    const l = await Promise.race([connected, proxy.exited.then(() => undefined)]);
    if (!l) return;
    rep.outbound = l.outbound;
    rep.inbound = l.inbound;
    rep.admin = l.admin;
  }

  private async runApp(rep: Replica): Promise<void> {
    if (rep.stopping || !rep.outbound) return;
    const spec = rep.resource.spec;
    // Spare the user from PATH surprises: `node` means the Node.js that runs Weft.
    const command = spec.command[0] === 'node' ? process.execPath : spec.command[0];
    const proxyUrl = `http://${rep.outbound}`;
    if (spec.port !== undefined && !(await portFree(spec.port))) {
      this.o.log(
        `workload ${rep.id}: port ${spec.port} (spec.port) is already in use by another process; stop that process or change spec.port — retrying in ${rep.backoffMs / 1000}s`,
      );
      rep.settled = true;
      this.scheduleRestart(rep);
      return;
    }
    const app = spawnPrefixed(
      command,
      spec.command.slice(1),
      {
        cwd: spec.cwd,
        detached: true, // its own process group, so stopping it stops whatever it started
        env: {
          ...process.env,
          ...spec.env,
          PORT: String(rep.appPort),
          HTTP_PROXY: proxyUrl,
          http_proxy: proxyUrl,
          NODE_USE_ENV_PROXY: '1',
          NO_PROXY: 'localhost,127.0.0.1,::1',
          no_proxy: 'localhost,127.0.0.1,::1',
          WEFT_WORKLOAD: rep.node.workload,
          WEFT_NAMESPACE: rep.node.namespace,
          WEFT_INSTANCE: rep.id,
          WEFT_REPLICA: String(rep.index),
        },
      },
      `[${rep.id}]`,
      this.o.output,
    );
    rep.app = app;
    const started = Date.now();
    void this.probe(rep, app);
    const e = await app.exited;
    if (rep.stopping || rep.app !== app) return;
    this.o.control.setReady(rep.id, false, rep.token);
    rep.settled = true;
    if (Date.now() - started > 60_000) rep.backoffMs = 1000; // it ran a good while: start the backoff over
    const why = e.error
      ? (e.error as NodeJS.ErrnoException).code === 'ENOENT'
        ? `command "${spec.command[0]}" was not found (spec.command in ${rep.resource.source.file}); fix the Workload's command`
        : e.error.message
      : `exited with ${e.signal ? `signal ${e.signal}` : `code ${e.code}`}`;
    const tail = app.tail();
    this.o.log(`workload ${rep.id} ${why}${tail.length ? `; last output: ${tail.join(' | ')}` : ''}; restarting in ${rep.backoffMs / 1000}s`);
    this.scheduleRestart(rep);
  }

  private scheduleRestart(rep: Replica): void {
    const delay = rep.backoffMs;
    rep.backoffMs = Math.min(MAX_BACKOFF_MS, rep.backoffMs * 2);
    rep.restartTimer = setTimeout(() => void this.runApp(rep), delay);
  }

  /** Ready when the app accepts TCP connections on its port (or at once, when nothing calls it). */
  private async probe(rep: Replica, app: Spawned): Promise<void> {
    if (!rep.serves) {
      rep.settled = true;
      this.o.control.setReady(rep.id, true, rep.token);
      return;
    }
    while (!rep.stopping && rep.app === app && app.child.exitCode === null && app.child.signalCode === null) {
      // Something accepting on the port is not enough: it must be this app (app-port.ts says why).
      if ((await canConnect(rep.appPort)) && (await listenerInGroup(rep.appPort, app.child.pid!)) !== false) {
        rep.settled = true;
        this.o.control.setReady(rep.id, true, rep.token);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  private async stopReplica(rep: Replica): Promise<void> {
    rep.stopping = true;
    if (rep.restartTimer) clearTimeout(rep.restartTimer);
    if (this.replicas.get(rep.id) === rep) this.replicas.delete(rep.id);
    // Take the endpoint out of every proxy's tables first, then stop the app, then its sidecar.
    this.o.control.setReady(rep.id, false, rep.token);
    if (rep.app) await stopProcess(rep.app, 5000, true);
    this.o.control.removeProxy(rep.id, rep.token);
    if (rep.proxy) await stopProcess(rep.proxy, 5000, false);
    this.o.ca?.revoke(rep.token);
  }

  /** A proxy's bootstrap token: issued by the CA for the proxy's identity, when there is a CA. */
  private token(node: ProxyNode): string {
    const id = parseSpiffeId(node.identity);
    if (this.o.ca && id) return this.o.ca.issue({ namespace: id.namespace, serviceAccount: id.serviceAccount });
    return randomBytes(16).toString('hex');
  }

  private spawnProxy(node: ProxyNode, token: string, extra: Record<string, string>): Spawned {
    return spawnPrefixed(
      process.execPath,
      [PROXY_MAIN],
      {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'], // the IPC channel closing tells the proxy weft is gone
        env: {
          ...process.env,
          WEFT_PROXY_ID: node.id,
          WEFT_PROXY_TOKEN: token,
          WEFT_CONTROL: this.o.controlAddress,
          ...(this.o.ca && parseSpiffeId(node.identity) ? { WEFT_CA: this.o.ca.address, WEFT_PROXY_IDENTITY: node.identity } : {}),
          ...(this.o.accessLog ? { WEFT_ACCESS_LOG: this.o.accessLog } : {}),
          ...(this.o.proxyCode ? { WEFT_PROXY_CODE: this.o.proxyCode } : {}),
          ...PROXY_MEMORY_SETTINGS,
          ...extra,
        },
      },
      `[${node.id} proxy]`,
      this.o.output,
    );
  }

  private waitConnected(id: string): Promise<{ outbound?: string; inbound?: string; admin: string }> {
    return new Promise((resolve) => {
      this.connectedWaiters.set(id, (l) => {
        this.connectedWaiters.delete(id);
        resolve(l);
      });
    });
  }
}

/**
 * Memory settings for proxy processes (measured in docs/performance.md, "Memory"): V8's young
 * generation capped at 8 MiB per semi-space instead of growing to 32 (at proxy allocation rates
 * it always reaches its cap, while almost nothing in it survives), and one malloc arena instead of
 * one per thread. Together ~40 MiB less RSS under load, latency unchanged. A user's own
 * NODE_OPTIONS come after ours and win; a MALLOC_ARENA_MAX already set is kept.
 */
const PROXY_MEMORY_SETTINGS = {
  NODE_OPTIONS: `--max-semi-space-size=8 ${process.env.NODE_OPTIONS ?? ''}`.trim(),
  MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '1',
};

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}
