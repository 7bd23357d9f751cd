// Per-cluster resilience state of one proxy that outlives snapshot swaps: circuit limits, the outlier detector with its sweep timer, and fallback caches.
//
// Istio's limits and ejections are per client proxy and per cluster, and must survive a
// configuration change: a new snapshot that keeps a cluster keeps its in-flight counts, its
// ejected endpoints and its cached answers. Compiled tables hold a cluster's `ClusterState` and
// read its current limits and detector on each request; `commit` applies a new snapshot's
// configs once the snapshot has compiled (so a NACKed one changes nothing).
//
// Outcomes flow in through `record` (every try's), never through shared counters elsewhere.

import type { Clock } from '../../core/clock.ts';
import type { ClusterConfig } from '../../wire/snapshot.ts';
import type { FallbackCacheConfig } from '../../wire/resilience.ts';
import { FallbackCache } from '../fallback/cache.ts';
import { CircuitLimits, type Admission, type RetryTicket } from './limits.ts';
import { OutlierDetector, type Ejection, type EjectionReason, type OutlierOutcome } from './outlier.ts';

/** An ejection as an operator reads it: wall-clock times. */
export interface EjectionReport {
  cluster: string;
  endpoint: string;
  reason: EjectionReason;
  /** ISO 8601. */
  since: string;
  until: string;
  /** How many times it has been ejected, this one included (the ejection time grows with it). */
  times: number;
}

/** The resilience state of one cluster in this proxy. */
export class ClusterState {
  readonly name: string;
  /** Present when the cluster has a `connectionPool` or `retryBudget`. */
  limits?: CircuitLimits;
  /** Present when the cluster has `outlierDetection`. */
  outlier?: OutlierDetector;
  /** The config last committed. */
  private committed?: ClusterConfig;
  /**
   * Goes up whenever the set of endpoints to balance over may have changed (an ejection, a
   * return, a new detector, new endpoints): compiled clusters rebuild their balancer then.
   */
  generation = 0;
  private timer?: ReturnType<typeof setInterval>;
  private limitsJson?: string;
  private outlierJson?: string;
  private endpointsJson = '';

  constructor(name: string) {
    this.name = name;
  }

  /** Decide one try (circuit limits); without limits every try goes. */
  admit(): Admission {
    return this.limits ? this.limits.admit() : GO;
  }

  /**
   * Start a retry: a ticket to release when its try ends, `undefined` when there are no limits,
   * or `'overflow'` — maxRetries or the retry budget is used up, and the retry is skipped.
   */
  beginRetry(): RetryTicket | 'overflow' | undefined {
    if (!this.limits) return undefined;
    return this.limits.beginRetry() ?? 'overflow';
  }

  /** One try's outcome for an endpoint (`host:port`); an ejection takes effect at once. */
  record(endpoint: string, outcome: OutlierOutcome): Ejection | undefined {
    const ejection = this.outlier?.record(endpoint, outcome);
    if (ejection) this.generation++;
    return ejection;
  }

  /** Apply this cluster's configs from a snapshot that compiled. */
  commit(config: ClusterConfig, clock: Clock): void {
    // The very config object committed last (an endpoint update leaves most clusters as they were): nothing to do.
    if (config === this.committed) return;
    this.committed = config;
    const limitsJson = config.limits ? JSON.stringify(config.limits) : undefined;
    if (!config.limits) this.limits = undefined;
    else if (!this.limits) this.limits = new CircuitLimits(config.limits, clock);
    else if (limitsJson !== this.limitsJson) this.limits.reconfigure(config.limits);
    this.limitsJson = limitsJson;

    const keys = [...new Set(config.endpoints.map((e) => `${e.host}:${e.port}`))];
    const endpointsJson = JSON.stringify(keys);
    const outlierJson = config.outlierDetection ? JSON.stringify(config.outlierDetection) : undefined;
    if (!config.outlierDetection) {
      if (this.outlier) this.generation++;
      this.stop();
      this.outlier = undefined;
    } else if (!this.outlier || outlierJson !== this.outlierJson) {
      // As in Envoy, a changed outlier config is a new detector: counts start afresh.
      this.stop();
      const detector = new OutlierDetector(config.outlierDetection, clock, keys);
      this.outlier = detector;
      this.generation++;
      this.timer = setInterval(() => {
        if (detector.sweep().length > 0) this.generation++;
      }, config.outlierDetection.intervalMs);
      this.timer.unref();
    } else if (endpointsJson !== this.endpointsJson) {
      this.outlier.setEndpoints(keys);
      this.generation++;
    }
    this.outlierJson = outlierJson;
    this.endpointsJson = endpointsJson;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** A `go` for clusters without limits: nothing to count, nothing to release. */
const GO: Admission = Object.freeze({ kind: 'go', release: () => {} });

/** Every cluster's state in this proxy, and the fallback caches (one per FallbackPolicy). */
export class ClusterStates {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly caches = new Map<string, { json: string; cache: FallbackCache }>();
  private clock?: Clock;

  /** The state of a cluster, created empty if new; configs are applied by `commit`. */
  forCluster(name: string): ClusterState {
    let s = this.clusters.get(name);
    if (!s) {
      s = new ClusterState(name);
      this.clusters.set(name, s);
    }
    return s;
  }

  /** The answer cache of a FallbackPolicy (`namespace/name`), when it has one. */
  cache(policy: string): FallbackCache | undefined {
    return this.caches.get(policy)?.cache;
  }

  /**
   * Apply a snapshot that compiled: each cluster's limits and detector, each policy's cache (a
   * changed cache config starts an empty cache). Clusters and caches it no longer names are
   * dropped; requests still running on older tables keep the objects they hold.
   */
  commit(clusters: readonly ClusterConfig[], clock: Clock): void {
    this.clock = clock;
    const names = new Set<string>();
    const caches = new Map<string, FallbackCacheConfig>();
    for (const c of clusters) {
      names.add(c.name);
      this.forCluster(c.name).commit(c, clock);
      if (c.fallback?.cache) caches.set(c.fallback.policy, c.fallback.cache);
    }
    for (const [name, s] of this.clusters) {
      if (names.has(name)) continue;
      s.stop();
      this.clusters.delete(name);
    }
    for (const policy of this.caches.keys()) if (!caches.has(policy)) this.caches.delete(policy);
    for (const [policy, config] of caches) {
      const json = JSON.stringify(config);
      if (this.caches.get(policy)?.json !== json) this.caches.set(policy, { json, cache: new FallbackCache(config, clock) });
    }
  }

  /** Every ejected endpoint, with wall-clock times. */
  ejections(): EjectionReport[] {
    const out: EjectionReport[] = [];
    const clock = this.clock;
    if (!clock) return out;
    // The detectors' clock is monotonic: anchor it to the wall clock once, now.
    const offset = Date.now() - clock.now();
    const iso = (t: number) => new Date(Math.round(t + offset)).toISOString();
    for (const s of this.clusters.values()) {
      for (const e of s.outlier?.ejections() ?? []) {
        out.push({ cluster: s.name, endpoint: e.endpoint, reason: e.reason, since: iso(e.since), until: iso(e.until), times: e.times });
      }
    }
    return out;
  }

  /** For /stats: per cluster, circuit limit counters and outlier counters; then the caches. */
  stats(): Record<string, unknown> {
    const clusters: Record<string, unknown> = {};
    for (const s of this.clusters.values()) {
      if (!s.limits && !s.outlier) continue;
      clusters[s.name] = {
        ...(s.limits ? { circuitBreakers: s.limits.state() } : {}),
        ...(s.outlier ? { outlierDetection: s.outlier.stats() } : {}),
      };
    }
    const caches: Record<string, unknown> = {};
    for (const [policy, { cache }] of this.caches) caches[policy] = cache.stats();
    return { clusters, ejections: this.ejections(), fallbackCaches: caches };
  }

  /**
   * Prometheus lines: `weft_outlier_ejected{cluster_name,endpoint,reason}` (1 while ejected) with
   * its `until` time, and Envoy's own cluster stats under their Prometheus names
   * (`envoy_cluster_outlier_detection_*`, `envoy_cluster_upstream_rq_pending_overflow`, …), so
   * dashboards built for Istio's Envoy read them as they are.
   */
  renderMetrics(): string {
    const lines: string[] = [];
    const family = (name: string, type: string, help: string, rows: string[]) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...rows);
    };
    const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
    const ejected: string[] = [];
    const until: string[] = [];
    const offset = this.clock ? Date.now() - this.clock.now() : 0;
    // Envoy's stats by name, in first-seen order: rows of `{cluster_name="…"} value`.
    const envoy = new Map<string, string[]>();
    const add = (name: string, row: string) => {
      if (!envoy.has(name)) envoy.set(name, []);
      envoy.get(name)!.push(row);
    };
    for (const s of this.clusters.values()) {
      const c = `cluster_name="${label(s.name)}"`;
      if (s.outlier) {
        for (const e of s.outlier.ejections()) {
          ejected.push(`weft_outlier_ejected{${c},endpoint="${label(e.endpoint)}",reason="${e.reason}"} 1`);
          until.push(`weft_outlier_ejected_until_seconds{${c},endpoint="${label(e.endpoint)}"} ${((e.until + offset) / 1000).toFixed(3)}`);
        }
        const st = s.outlier.stats();
        add('envoy_cluster_outlier_detection_ejections_active', `{${c}} ${st.ejectionsActive}`);
        add('envoy_cluster_outlier_detection_ejections_overflow', `{${c}} ${st.overflow}`);
        for (const reason of Object.keys(st.enforced) as EjectionReason[]) {
          add(`envoy_cluster_outlier_detection_ejections_enforced_${reason}`, `{${c}} ${st.enforced[reason]}`);
          add(`envoy_cluster_outlier_detection_ejections_detected_${reason}`, `{${c}} ${st.detected[reason]}`);
        }
        add('envoy_cluster_outlier_detection_ejections_enforced_total', `{${c}} ${Object.values(st.enforced).reduce((a, b) => a + b, 0)}`);
      }
      if (s.limits) {
        const st = s.limits.state();
        add('envoy_cluster_upstream_rq_active', `{${c}} ${st.active}`);
        add('envoy_cluster_upstream_rq_pending_active', `{${c}} ${st.pending}`);
        add('envoy_cluster_upstream_rq_pending_overflow', `{${c}} ${st.overflow}`);
        add('envoy_cluster_upstream_rq_retry_overflow', `{${c}} ${st.retryOverflow}`);
      }
    }
    family('weft_outlier_ejected', 'gauge', 'Endpoints ejected by outlier detection now (1 each), by cluster, endpoint and reason.', ejected);
    family('weft_outlier_ejected_until_seconds', 'gauge', 'When an ejected endpoint returns at the earliest (Unix time, seconds).', until);
    for (const [name, rows] of envoy) {
      const gauge = name.endsWith('_active');
      family(name, gauge ? 'gauge' : 'counter', `Envoy's cluster stat ${name.replace(/^envoy_cluster_/, '')}.`, rows.map((r) => name + r));
    }
    const entries: string[] = [];
    const bytes: string[] = [];
    for (const [policy, { cache }] of this.caches) {
      const st = cache.stats();
      entries.push(`weft_fallback_cache_entries{policy="${label(policy)}"} ${st.entries}`);
      bytes.push(`weft_fallback_cache_bytes{policy="${label(policy)}"} ${st.bytes}`);
    }
    family('weft_fallback_cache_entries', 'gauge', 'Answers held by a FallbackPolicy cache.', entries);
    family('weft_fallback_cache_bytes', 'gauge', 'Bytes held by a FallbackPolicy cache.', bytes);
    return lines.join('\n') + '\n';
  }

  /** Stop every timer (the proxy is closing). */
  close(): void {
    for (const s of this.clusters.values()) s.stop();
  }
}
