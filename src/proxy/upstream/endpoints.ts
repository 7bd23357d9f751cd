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

  /** Close pools whose address is not in `keep`. */
  retain(keep: ReadonlySet<string>): void {
    for (const [key, s] of this.states) {
      if (keep.has(key)) continue;
      this.states.delete(key);
      s.pool.close().catch(() => {});
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.states.values()];
    this.states.clear();
    await Promise.allSettled(all.map((s) => s.pool.close()));
  }
}
