// Control plane core: last good resources + registry → per-proxy snapshots, versions, ACK/NACK state.
//
// It knows nothing of processes or files: the supervisor tells it which proxies exist and whether
// their apps are up; the loader hands it validated resources. Only the push server touches sockets.

import type { Resource } from '../api/types.ts';
import { buildRegistry, REGISTRY_KINDS, sameRecords, type Registry, type WorkloadInstance } from '../registry/registry.ts';
import {
  CLUSTER_CACHE_KINDS,
  endpointContext,
  outboundView,
  routesUseSourceLabels,
  translateOutbound,
  withInbound,
  type CachedCluster,
  type EndpointContext,
  type OutboundPart,
} from '../translate/translate.ts';
import {
  WIRE_FORMAT,
  type ClusterEndpoints,
  type ConfigDelta,
  type EndpointsUpdate,
  type ProxyHello,
  type ProxyNode,
  type ProxySnapshot,
} from '../wire/snapshot.ts';
import { endpointChanges, onlyEndpointsDiffer, sameResources, sentClusters, type ComputedEndpoints, type SentCluster } from './incremental.ts';
import { configDelta, endpointsChanged, sentConfig, type SentConfig } from './config-delta.ts';
import type { ProxyConnection, PushHandlers } from './push-server.ts';

export interface ProxyRegistration {
  node: ProxyNode;
  token: string;
  /** Sidecars: the app's port behind the proxy, and the instance the registry sees. */
  app?: { host: string; port: number };
  instance?: WorkloadInstance;
}

interface ProxyRecord extends ProxyRegistration {
  conn?: ProxyConnection;
  listeners?: ProxyHello['listeners'];
  pid?: number;
  /**
   * What the proxy holds (or was last sent, if it refused that), piece by piece: the next change
   * is worked out against it. Undefined: the next push sends the whole snapshot.
   */
  sent?: SentConfig;
  /** False once the proxy refused the whole snapshot `sent` describes: the next change goes whole. */
  holdsSent?: boolean;
  /** What the last message sent was: a refused update is followed by the whole snapshot. */
  sentKind?: 'snapshot' | 'delta' | 'endpoints';
  /**
   * The clusters the proxy holds, as sent, and the configuration generation of the snapshot that
   * defined them: while the generation is current, changes reach the proxy as endpoint updates.
   */
  sentClusters?: SentCluster[];
  sentGeneration?: number;
  sentVersion?: number;
  ackedVersion?: number;
  nack?: { version: number; error: string };
  /** The workload certificate the CA last issued for this proxy's token. */
  certificate?: CertificateInfo;
}

/** What `weft status` shows of a proxy's workload certificate. */
export interface CertificateInfo {
  spiffeId: string;
  serial: string;
  notAfter: string;
}

export interface ProxyStatus {
  id: string;
  kind: ProxyNode['kind'];
  workload: string;
  namespace: string;
  identity: string;
  /** The configuration version the proxy runs (its last ACK), or null before the first. */
  version: number | null;
  /** The newest version sent to it. */
  latest: number | null;
  synced: boolean;
  error: string | null;
  connected: boolean;
  pid: number | null;
  ready: boolean | null;
  listeners: { inbound: string | null; outbound: string | null; admin: string | null };
  /** Sidecars: where the app behind the proxy listens (`host:port`), for operator tools such as `weft demo chaos`. */
  app: string | null;
  /** Its current workload certificate, or null (no CA, or none issued yet). */
  certificate: CertificateInfo | null;
}

export class ControlPlane {
  private resources: readonly Resource[] = [];
  /** The CA's trust bundle, added to every snapshot (a change is pushed like any other). */
  private trustBundle?: string[];
  private readonly proxies = new Map<string, ProxyRecord>();
  private version = 0;
  /**
   * Grows with every change that is not only to endpoints (resources other than WorkloadEntries,
   * the trust bundle): a proxy last sent an older generation gets a whole new snapshot.
   */
  private generation = 0;
  private lastPushCounts = { snapshots: 0, deltas: 0, endpointUpdates: 0 };
  /**
   * The registry, kept while its resources and the instances stay the same, and the clusters made
   * so far, kept while every resource a cluster depends on but endpoints stays the same: so a
   * routing change translates only routes.
   */
  private made?: MadeFrom;
  private scheduled = false;
  private readonly waiters: Array<() => void> = [];
  private readonly log: (line: string) => void;
  private readonly onConnected?: (id: string, listeners: ProxyHello['listeners']) => void;

  constructor(log: (line: string) => void, onConnected?: (id: string, listeners: ProxyHello['listeners']) => void) {
    this.log = log;
    this.onConnected = onConnected;
  }

  /** The configuration version of the newest push. */
  get currentVersion(): number {
    return this.version;
  }

  /** How many proxies the newest push sent a whole snapshot, a delta and an endpoint update. */
  get lastPush(): { snapshots: number; deltas: number; endpointUpdates: number } {
    return { ...this.lastPushCounts };
  }

  /** Replace the configuration with a new, fully validated set of resources. */
  setResources(resources: readonly Resource[]): void {
    if (!onlyEndpointsDiffer(this.resources, resources)) this.generation++;
    this.resources = resources;
    this.schedulePush();
  }

  /** The roots proxies must trust (first: the one the CA signs under); pushed to every proxy. */
  setTrustBundle(roots: readonly string[]): void {
    this.trustBundle = [...roots];
    this.generation++;
    this.schedulePush();
  }

  /** The CA issued a certificate to whoever holds `token`. */
  certificateIssued(token: string, cert: CertificateInfo): void {
    for (const rec of this.proxies.values()) if (rec.token === token) rec.certificate = cert;
  }

  registerProxy(reg: ProxyRegistration): void {
    this.proxies.set(reg.node.id, { ...reg });
    this.schedulePush();
  }

  /** Forget a proxy; with `token`, only if it is still that registration (not a restarted one). */
  removeProxy(id: string, token?: string): void {
    const rec = this.proxies.get(id);
    if (!rec || (token !== undefined && rec.token !== token)) return;
    rec.conn?.close();
    this.proxies.delete(id);
    this.schedulePush();
  }

  setReady(id: string, ready: boolean, token?: string): void {
    const rec = this.proxies.get(id);
    if (!rec?.instance || rec.instance.ready === ready || (token !== undefined && rec.token !== token)) return;
    rec.instance = { ...rec.instance, ready };
    this.schedulePush();
  }

  /** The push server's callbacks. */
  handlers(): PushHandlers {
    return {
      authenticate: (hello) => {
        const rec = this.proxies.get(hello.id);
        if (!rec) return `no proxy ${hello.id} is expected`;
        if (rec.token !== hello.token) return 'wrong bootstrap token';
        return undefined;
      },
      connected: (conn) => {
        const rec = this.proxies.get(conn.hello.id);
        if (!rec) return;
        rec.conn?.close();
        rec.conn = conn;
        rec.listeners = conn.hello.listeners;
        rec.pid = conn.hello.pid;
        // A new stream starts from nothing: send the full snapshot again.
        rec.sent = undefined;
        rec.sentClusters = undefined;
        if (rec.instance && conn.hello.listeners.inbound) {
          const inbound = splitHostPort(conn.hello.listeners.inbound);
          rec.instance = { ...rec.instance, inbound };
        }
        this.schedulePush();
        this.onConnected?.(conn.hello.id, conn.hello.listeners);
      },
      ack: (id, version) => {
        const rec = this.proxies.get(id);
        if (!rec) return;
        rec.ackedVersion = version;
        if (rec.nack && rec.nack.version <= version) rec.nack = undefined;
        this.wakeWaiters();
      },
      nack: (id, version, error) => {
        const rec = this.proxies.get(id);
        if (!rec) return;
        rec.nack = { version, error };
        // What the proxy holds is no longer what was sent: the next change goes as a whole snapshot.
        rec.sentClusters = undefined;
        if (version === rec.sentVersion) {
          // A rejected update is followed by the whole snapshot now; a rejected snapshot is not
          // sent again as it is (it would be rejected again), only once something changes.
          if (rec.sentKind === 'snapshot') rec.holdsSent = false;
          else {
            rec.sent = undefined;
            this.schedulePush();
          }
        }
        this.log(`proxy ${id} rejected configuration version ${version}: ${error} (it keeps running version ${rec.ackedVersion ?? 'none'})`);
        this.wakeWaiters();
      },
      disconnected: (conn) => {
        const rec = this.proxies.get(conn.hello.id);
        if (rec?.conn === conn) rec.conn = undefined;
      },
      log: this.log,
    };
  }

  /** Resolves once every registered proxy is connected and has answered its latest snapshot. */
  whenSettled(): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.settled()) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  private settled(): boolean {
    if (this.scheduled) return false;
    for (const r of this.proxies.values()) {
      if (!r.conn || r.sentVersion === undefined) return false;
      if (r.ackedVersion !== r.sentVersion && r.nack?.version !== r.sentVersion) return false;
    }
    return true;
  }

  private wakeWaiters(): void {
    const w = this.waiters.splice(0);
    for (const f of w) f();
  }

  status(): ProxyStatus[] {
    return [...this.proxies.values()].map((r) => ({
      id: r.node.id,
      kind: r.node.kind,
      workload: r.node.workload,
      namespace: r.node.namespace,
      identity: r.node.identity,
      version: r.ackedVersion ?? null,
      latest: r.sentVersion ?? null,
      synced: r.sentVersion !== undefined && r.ackedVersion === r.sentVersion,
      error: r.nack ? `version ${r.nack.version} rejected: ${r.nack.error}` : null,
      connected: r.conn !== undefined,
      pid: r.pid ?? null,
      ready: r.instance ? r.instance.ready : null,
      listeners: {
        inbound: r.listeners?.inbound ?? null,
        outbound: r.listeners?.outbound ?? null,
        admin: r.listeners?.admin ?? null,
      },
      app: r.app ? `${r.app.host}:${r.app.port}` : null,
      certificate: r.certificate ?? null,
    }));
  }

  /** Coalesce bursts of changes (many endpoints coming up at once) into one push. */
  private schedulePush(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.push();
      this.wakeWaiters();
    });
  }

  private push(): void {
    const instances = [...this.proxies.values()].flatMap((r) => (r.instance ? [r.instance] : []));
    const { registry, clusters: clusterCaches } = this.madeFrom(instances);
    const snapshots: Array<[ProxyRecord, ProxySnapshot]> = [];
    const deltas: Array<[ProxyRecord, Omit<ConfigDelta, 'version' | 'base'>, SentConfig]> = [];
    const updates: Array<[ProxyRecord, ClusterEndpoints[]]> = [];
    // Per proxy namespace (a DestinationRule's subsets depend on it), made when first needed.
    const contexts = new Map<string, { ctx: EndpointContext; computed: ComputedEndpoints }>();
    // Proxies that see the same routes (translate.ts outboundView) share one translation of them.
    const outbounds = new Map<string, OutboundPart>();
    let useSourceLabels: boolean | undefined;
    for (const rec of this.proxies.values()) {
      if (!rec.conn) continue;
      const ns = rec.node.namespace;
      if (rec.sentClusters && rec.sentGeneration === this.generation && rec.holdsSent) {
        // Only endpoints can have changed for this proxy: send those that did.
        let c = contexts.get(ns);
        if (!c) contexts.set(ns, (c = { ctx: endpointContext(this.resources, registry, ns), computed: new Map() }));
        const changes = endpointChanges(rec.sentClusters, c.ctx, c.computed);
        if (changes.length > 0) updates.push([rec, changes]);
        continue;
      }
      let snap: ProxySnapshot;
      try {
        useSourceLabels ??= routesUseSourceLabels(this.resources);
        const view = outboundView(rec.node, useSourceLabels);
        let outbound = outbounds.get(view);
        if (!outbound) {
          let clusterCache = clusterCaches.get(ns);
          if (!clusterCache) clusterCaches.set(ns, (clusterCache = new Map()));
          outbounds.set(view, (outbound = translateOutbound({ resources: this.resources, registry, proxy: rec.node, clusterCache })));
        }
        snap = withInbound(
          { resources: this.resources, registry, proxy: rec.node, inbound: rec.app ? { appHost: rec.app.host, appPort: rec.app.port } : undefined, version: 0 },
          outbound,
        );
        if (this.trustBundle) snap.trustBundle = this.trustBundle;
      } catch (err) {
        // A translation bug must not take the mesh down: keep the proxy on what it has.
        this.log(`could not translate configuration for ${rec.node.id}: ${(err as Error).stack}`);
        continue;
      }
      rec.sentClusters = sentClusters(snap.clusters, registry);
      rec.sentGeneration = this.generation;
      const change = rec.sent ? configDelta(rec.sent, snap) : ({ kind: 'whole' } as const);
      if (change.kind === 'same') continue;
      if (change.kind === 'delta' && rec.holdsSent) deltas.push([rec, change.delta, change.holds]);
      else snapshots.push([rec, snap]);
    }
    if (snapshots.length === 0 && deltas.length === 0 && updates.length === 0) return;
    this.version++;
    this.lastPushCounts = { snapshots: snapshots.length, deltas: deltas.length, endpointUpdates: updates.length };
    for (const [rec, snap] of snapshots) {
      snap.version = this.version;
      this.sent(rec, 'snapshot', sentConfig(snap), snap);
    }
    for (const [rec, delta, holds] of deltas) {
      const message: ConfigDelta = { ...delta, version: this.version, base: rec.sentVersion! };
      this.sent(rec, 'delta', holds, message);
    }
    for (const [rec, clusters] of updates) {
      const update: EndpointsUpdate = { type: 'endpoints', wire: WIRE_FORMAT, version: this.version, base: rec.sentVersion!, clusters };
      this.sent(rec, 'endpoints', rec.sent && endpointsChanged(rec.sent, clusters), update);
    }
  }

  /** Record what `rec` is sent, and send it. */
  private sent(rec: ProxyRecord, kind: ProxyRecord['sentKind'], holds: SentConfig | undefined, message: ProxySnapshot | ConfigDelta | EndpointsUpdate): void {
    rec.sent = holds;
    rec.holdsSent = true;
    rec.sentKind = kind;
    rec.sentVersion = this.version;
    rec.conn!.send(message);
  }

  /** The registry and per-namespace cluster caches for the current resources and instances, made again where they changed. */
  private madeFrom(instances: readonly WorkloadInstance[]): MadeFrom {
    const before = this.made;
    const resources = this.resources;
    const keepRegistry = before && sameRecords(before.instances, instances) && sameResources(before.resources, resources, (k) => REGISTRY_KINDS.has(k));
    const keepClusters = before && sameResources(before.resources, resources, (k) => !CLUSTER_CACHE_KINDS.has(k));
    return (this.made = {
      resources,
      instances,
      registry: keepRegistry ? before.registry : buildRegistry(resources, instances),
      clusters: keepClusters ? before.clusters : new Map(),
    });
  }
}

/** What the control plane made from its resources and instances, kept for the next push. */
interface MadeFrom {
  resources: readonly Resource[];
  instances: readonly WorkloadInstance[];
  registry: Registry;
  /** Clusters made so far, by proxy namespace and name (translate's clusterCache). */
  clusters: Map<string, Map<string, CachedCluster>>;
}

function splitHostPort(a: string): { host: string; port: number } {
  const i = a.lastIndexOf(':');
  return { host: a.slice(0, i), port: Number(a.slice(i + 1)) };
}
