// Endpoint state that outlives configuration swaps: the connection pool and in-flight count per
// address (and per transport: HTTP/1.1, h2c, TLS, and the cluster's pool settings); and, beside
// it, each cluster's resilience state (limits, ejections, fallback caches: cluster-state.ts).

import type { ClusterConfig, EndpointConfig, UpstreamProtocol } from '../../wire/snapshot.ts';
import { createUpstream, HTTP1, TlsMaterial, transportId, type Transport } from './transport.ts';
import type { Upstream, UpstreamRequest, UpstreamResponse } from './upstream.ts';
import { ClusterStates } from './cluster-state.ts';
import { poolSettings } from './pool-settings.ts';

export interface EndpointState {
  /** The address, `host:port`: what balancers, retries and logs call the endpoint. */
  readonly key: string;
  /** The address and how it is spoken to (`host:port|h2`): what the state is kept by. */
  readonly id: string;
  readonly transport: Transport;
  /** HTTP/1.1 keep-alive pool, or HTTP/2 sessions (multiplexed), or either over TLS by ALPN. */
  readonly pool: Upstream;
  /**
   * A `useClientProtocol` cluster's: the pool for requests that came in over HTTP/2 (`pool` and
   * `transport` are then for those that came in over HTTP/1.x). Absent otherwise; see poolFor.
   */
  readonly h2Pool?: Upstream;
  /** Requests in flight from this proxy; read by least-request balancing. */
  active: number;
}

/** What an endpoint's state is kept by: see EndpointState.id. */
export function endpointId(host: string, port: number, transport: Transport = HTTP1): string {
  return `${host}:${port}|${transportId(transport)}`;
}

/** The pool for a request that came in over `clientProtocol`: its own on a `useClientProtocol` cluster, else the cluster's one. */
export function poolFor(state: EndpointState, clientProtocol: UpstreamProtocol): Upstream {
  return clientProtocol === 'h2' && state.h2Pool ? state.h2Pool : state.pool;
}

/**
 * One keep-alive pool (or HTTP/2 session pool) per upstream address and transport, shared by
 * every snapshot that names it, so a configuration change never drops a connection. Those no
 * snapshot names any more are closed gracefully (in-flight requests finish).
 */
export class EndpointStates {
  private readonly states = new Map<string, EndpointState>();
  /** Per cluster name: when each member address joined it (clock ms), for slow start. */
  private readonly members = new Map<string, Map<string, number>>();
  /** CA files the clusters' TLS settings name, read once per snapshot. */
  readonly tls = new TlsMaterial();
  /** Per cluster: circuit limits, outlier detection, fallback caches. */
  readonly clusters = new ClusterStates();

  /**
   * When each of `keys` joined `cluster`, as slow start counts it. An address new to the cluster
   * joins `now`; a member keeps its time; a member no longer listed is forgotten, so if it comes
   * back (a restarted replica) it joins afresh. A cluster seen for the first time joins all its
   * endpoints `now`, as Envoy starts every host's window when the cluster's balancer first sees
   * it: they ramp together, so their shares do not change, but a later endpoint ramps against
   * them. (Called while compiling, so a NACKed snapshot's endpoints count as joined.)
   */
  joinTimes(cluster: string, keys: readonly string[], now: number): ReadonlyMap<string, number> {
    const before = this.members.get(cluster);
    const after = new Map<string, number>();
    for (const key of keys) after.set(key, before?.get(key) ?? now);
    this.members.set(cluster, after);
    return after;
  }

  /** The state of a cluster's endpoint, spoken to as the cluster says (see TlsMaterial.transportFor). */
  forEndpoint(cluster: ClusterConfig, endpoint: EndpointConfig): EndpointState {
    const pool = poolSettings(cluster);
    if (cluster.useClientProtocol) {
      const [http1, h2] = (['http1', 'h2'] as const).map((p) => {
        const t = this.tls.transportFor(cluster, endpoint, p);
        return pool ? { ...t, pool } : t;
      });
      return this.withClientProtocol(endpoint.host, endpoint.port, http1, h2);
    }
    const transport = this.tls.transportFor(cluster, endpoint);
    return this.get(endpoint.host, endpoint.port, pool ? { ...transport, pool } : transport);
  }

  /**
   * A `useClientProtocol` state: a pool per protocol and one in-flight count for balancing. The
   * pools are its own, not shared with clusters of fixed protocol (to a sidecar its HTTP/1.1 pool
   * offers only `http/1.1`, theirs lets the peer choose h2). Its id is the HTTP/1.1 transport's
   * (the h2 one differs only in protocol) marked `|client`.
   */
  private withClientProtocol(host: string, port: number, http1: Transport, h2: Transport): EndpointState {
    const id = `${endpointId(host, port, http1)}|client`;
    let s = this.states.get(id);
    if (!s) {
      const key = `${host}:${port}`;
      s = { key, id, transport: http1, pool: new OnFirstUse(key, http1), h2Pool: new OnFirstUse(key, h2), active: 0 };
      this.states.set(id, s);
    }
    return s;
  }

  get(host: string, port: number, transport: Transport = HTTP1): EndpointState {
    const id = endpointId(host, port, transport);
    let s = this.states.get(id);
    if (!s) {
      const key = `${host}:${port}`;
      s = { key, id, transport, pool: new OnFirstUse(key, transport), active: 0 };
      this.states.set(id, s);
    }
    return s;
  }

  /**
   * Close pools whose id (see endpointId) is not in `keep`, and forget cluster memberships of
   * addresses (`host:port`) not in `addresses` — by default, those of the kept ids.
   */
  retain(keep: ReadonlySet<string>, addresses: ReadonlySet<string> = addressesOf(keep)): void {
    for (const [id, s] of this.states) {
      if (keep.has(id)) continue;
      this.states.delete(id);
      s.pool.close().catch(() => {});
      s.h2Pool?.close().catch(() => {});
    }
    for (const joined of this.members.values()) for (const key of joined.keys()) if (!addresses.has(key)) joined.delete(key);
  }

  async closeAll(): Promise<void> {
    this.clusters.close();
    const all = [...this.states.values()];
    this.states.clear();
    await Promise.allSettled(all.flatMap((s) => (s.h2Pool ? [s.pool.close(), s.h2Pool.close()] : [s.pool.close()])));
  }
}

function addressesOf(ids: ReadonlySet<string>): Set<string> {
  const addresses = new Set<string>();
  for (const id of ids) {
    const bar = id.indexOf('|');
    addresses.add(bar === -1 ? id : id.slice(0, bar));
  }
  return addresses;
}

/**
 * An endpoint's pool, made at its first request rather than when a snapshot names the endpoint:
 * a proxy of a large mesh knows thousands of endpoints and talks to few (with 1000 services × 10
 * endpoints, making every connection pool up front took much of the snapshot's compile time and
 * held ~400 MiB). Closed before use, it makes none; asked after close, it fails as a closed pool
 * does.
 */
class OnFirstUse implements Upstream {
  private real?: Upstream;
  private closed = false;
  private readonly key: string;
  private readonly transport: Transport;

  constructor(key: string, transport: Transport) {
    this.key = key;
    this.transport = transport;
  }

  request(r: UpstreamRequest): Promise<UpstreamResponse> {
    if (!this.real) {
      if (this.closed) return Promise.reject(Object.assign(new Error(`the pool for ${this.key} is closed`), { code: 'UND_ERR_CLOSED' }));
      this.real = createUpstream(this.key, this.transport);
    }
    return this.real.request(r);
  }

  close(): Promise<void> {
    this.closed = true;
    return this.real ? this.real.close() : Promise.resolve();
  }
}
