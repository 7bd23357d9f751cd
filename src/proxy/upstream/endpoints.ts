// Endpoint state that outlives configuration swaps: the connection pool and in-flight count per address.

import { Pool } from 'undici';

export interface EndpointState {
  readonly key: string;
  readonly pool: Pool;
  /** Requests in flight from this proxy; read by least-request balancing. */
  active: number;
}

/**
 * One keep-alive pool per upstream address, shared by every snapshot that names the address, so a
 * configuration change never drops a connection. Addresses no snapshot names any more are closed
 * gracefully (in-flight requests finish).
 */
export class EndpointStates {
  private readonly states = new Map<string, EndpointState>();
  /** Per cluster name: when each member address joined it (clock ms), for slow start. */
  private readonly members = new Map<string, Map<string, number>>();

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

  get(host: string, port: number): EndpointState {
    const key = `${host}:${port}`;
    let s = this.states.get(key);
    if (!s) {
      s = {
        key,
        pool: new Pool(`http://${key}`, {
          // Keep-alive upstream; a long stream must not be cut by undici's own timers: the mesh
          // applies route timeouts itself.
          keepAliveTimeout: 30_000,
          headersTimeout: 0,
          bodyTimeout: 0,
          connectTimeout: 10_000,
        }),
        active: 0,
      };
      this.states.set(key, s);
    }
    return s;
  }

  /** Close pools whose address is not in `keep`, and forget those addresses' cluster memberships. */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, s] of this.states) {
      if (keep.has(key)) continue;
      this.states.delete(key);
      s.pool.close().catch(() => {});
    }
    for (const joined of this.members.values()) for (const key of joined.keys()) if (!keep.has(key)) joined.delete(key);
  }

  async closeAll(): Promise<void> {
    const all = [...this.states.values()];
    this.states.clear();
    await Promise.allSettled(all.map((s) => s.pool.close()));
  }
}
