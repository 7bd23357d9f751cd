// Request metrics under Istio's names and labels, recorded against pre-resolved label sets.
//
// The label values that do not change per request (who is talking to whom) are rendered once
// into a `PeerLabels`; per request only the response code, flags and gRPC status vary, and each
// combination's series is created the first time it is seen and kept from then on.

/** Istio's default histogram buckets for request duration (milliseconds). */
const DURATION_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's default buckets for request/response sizes (bytes). */
const SIZE_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** The labels Istio's standard metrics carry, minus the per-request ones. */
export interface PeerLabelValues {
  reporter: 'source' | 'destination';
  source_workload: string;
  source_workload_namespace: string;
  source_principal: string;
  source_app: string;
  source_version: string;
  destination_workload: string;
  destination_workload_namespace: string;
  destination_principal: string;
  destination_app: string;
  destination_version: string;
  destination_service: string;
  destination_service_name: string;
  destination_service_namespace: string;
  connection_security_policy: string;
}

class Histogram {
  readonly buckets: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(buckets: readonly number[]) {
    this.buckets = buckets;
    this.counts = new Float64Array(buckets.length);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    const b = this.buckets;
    for (let i = 0; i < b.length; i++) if (v <= b[i]) { this.counts[i]++; return; }
  }
}

class Series {
  requests = 0;
  readonly duration = new Histogram(DURATION_BUCKETS);
  readonly requestBytes = new Histogram(SIZE_BUCKETS);
  readonly responseBytes = new Histogram(SIZE_BUCKETS);
  readonly labels: string;
  constructor(labels: string) {
    this.labels = labels;
  }
}

/** A counter of fallback answers for one label set (Weft's own metric; Istio's keep their labels). */
interface FallbackSeries {
  labels: string;
  count: number;
}

export class PeerLabels {
  private readonly byOutcome = new Map<string, Series>();
  private readonly fallbacks = new Map<string, FallbackSeries>();
  private readonly rendered: string;
  private readonly all: Series[];
  private readonly allFallbacks: FallbackSeries[];
  constructor(rendered: string, all: Series[], allFallbacks: FallbackSeries[]) {
    this.rendered = rendered;
    this.all = all;
    this.allFallbacks = allFallbacks;
  }

  /**
   * A fallback answered for this destination: `kind` is what answered (cache, route, static),
   * `trigger` why (unavailable, overflow, timeout, 5xx). Counted in `weft_fallback_total`; the
   * request itself is counted in istio_requests_total as usual, with the failure's flag.
   */
  fallback(kind: string, trigger: string): void {
    const key = `${kind}|${trigger}`;
    let f = this.fallbacks.get(key);
    if (!f) {
      f = { labels: `${this.rendered},fallback="${kind}",trigger="${trigger}"`, count: 0 };
      this.fallbacks.set(key, f);
      this.allFallbacks.push(f);
    }
    f.count++;
  }

  /** `protocol` is Istio's request_protocol: `grpc` for gRPC requests, else `http`. */
  record(
    code: number,
    flags: string,
    grpcStatus: string,
    durationMs: number,
    requestBytes: number,
    responseBytes: number,
    protocol: 'http' | 'grpc' = 'http',
  ): void {
    const key = `${code}|${flags}|${grpcStatus}|${protocol}`;
    let s = this.byOutcome.get(key);
    if (!s) {
      s = new Series(`${this.rendered},request_protocol="${protocol}",response_code="${code}",grpc_response_status="${grpcStatus}",response_flags="${flags}"`);
      this.byOutcome.set(key, s);
      this.all.push(s);
    }
    s.requests++;
    s.duration.observe(durationMs);
    s.requestBytes.observe(requestBytes);
    s.responseBytes.observe(responseBytes);
  }
}

export class MeshMetrics {
  private readonly series: Series[] = [];
  private readonly fallbacks: FallbackSeries[] = [];
  private readonly peers = new Map<string, PeerLabels>();
  private readonly collectors = new Map<string, () => string>();

  /** Adds (or replaces) a source of more exposition text, rendered after the request metrics. */
  collect(name: string, render: () => string): void {
    this.collectors.set(name, render);
  }

  /** The same label values always give the same object, so counts survive configuration swaps. */
  peer(v: PeerLabelValues): PeerLabels {
    let rendered = '';
    for (const k in v) rendered += `${rendered ? ',' : ''}${k}="${escapeLabel(String(v[k as keyof PeerLabelValues]))}"`;
    let p = this.peers.get(rendered);
    if (!p) {
      p = new PeerLabels(rendered, this.series, this.fallbacks);
      this.peers.set(rendered, p);
    }
    return p;
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    out.push('# HELP istio_requests_total Requests handled, by source, destination and outcome.');
    out.push('# TYPE istio_requests_total counter');
    for (const s of this.series) out.push(`istio_requests_total{${s.labels}} ${s.requests}`);
    histogram(out, 'istio_request_duration_milliseconds', 'Request duration in milliseconds.', this.series, (s) => s.duration);
    histogram(out, 'istio_request_bytes', 'Request body size in bytes.', this.series, (s) => s.requestBytes);
    histogram(out, 'istio_response_bytes', 'Response body size in bytes.', this.series, (s) => s.responseBytes);
    out.push('# HELP weft_fallback_total Answers a FallbackPolicy gave instead of the real one, by what answered and why.');
    out.push('# TYPE weft_fallback_total counter');
    for (const f of this.fallbacks) out.push(`weft_fallback_total{${f.labels}} ${f.count}`);
    let text = out.join('\n') + '\n';
    for (const render of this.collectors.values()) text += render();
    return text;
  }
}

function histogram(out: string[], name: string, help: string, series: readonly Series[], pick: (s: Series) => Histogram): void {
  out.push(`# HELP ${name} ${help}`);
  out.push(`# TYPE ${name} histogram`);
  for (const s of series) {
    const h = pick(s);
    let cumulative = 0;
    for (let i = 0; i < h.buckets.length; i++) {
      cumulative += h.counts[i];
      out.push(`${name}_bucket{${s.labels},le="${h.buckets[i]}"} ${cumulative}`);
    }
    out.push(`${name}_bucket{${s.labels},le="+Inf"} ${h.count}`);
    out.push(`${name}_sum{${s.labels}} ${h.sum}`);
    out.push(`${name}_count{${s.labels}} ${h.count}`);
  }
}

const NEEDS_ESCAPE = /[\\\n"]/;

/** Prometheus label value escaping; most values need none (a snapshot renders one set per endpoint). */
function escapeLabel(v: string): string {
  if (!NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
