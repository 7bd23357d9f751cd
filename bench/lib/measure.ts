// One measurement each: open-loop latency (loadgen), closed-loop throughput (wrk), SSE delay,
// with the proxy's CPU time and resident memory sampled while it runs.

import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cpuSeconds, memoryKiB } from './procs.ts';

const run = promisify(execFile);

/** Compiles bench/loadgen.c into `dir` (gcc); returns the binary's path for `latency`. */
export function buildLoadgen(dir: string): string {
  const loadgen = join(dir, 'loadgen');
  execFileSync('gcc', ['-O2', '-Wall', '-o', loadgen, fileURLToPath(new URL('../loadgen.c', import.meta.url))], { stdio: 'inherit' });
  return loadgen;
}

export interface LatencyResult {
  rate: number;
  durationS: number;
  connections: number;
  requests: number;
  errors: number;
  non2xx: number;
  timeouts: number;
  reconnects: number;
  achievedRps: number;
  latencyUs: { p50: number; p90: number; p99: number; 'p99.9': number; 'p99.99': number; max: number; mean: number };
  sendLagUs: { p50: number; p99: number; max: number };
  /** Largest resident set of each proxy process during the run (KiB). */
  peakRssKiB: number[];
}

export interface ThroughputResult {
  connections: number;
  durationS: number;
  requests: number;
  rps: number;
  non2xx: number;
  socketErrors: number;
  /** CPU seconds the proxy processes used during the run, and that per wall second. */
  proxyCpuS: number;
  proxyCpuShare: number;
  /** Requests per CPU-second of proxy (= req/s per proxy core, saturated or not). */
  rpsPerProxyCore: number;
  peakRssKiB: number[];
}

export interface SseResult {
  streams: number;
  eventsPerStream: number;
  gapMs: number;
  events: number;
  completedStreams: number;
  missingEvents: number;
  errors: number;
  timedOut: boolean;
  late: number;
  held: number;
  delayUs: { p50: number; p90: number; p99: number; max: number };
  firstEventUs: { p50: number; max: number };
}

/** Samples every pid's VmRSS every 100 ms while `work` runs; returns the peaks (KiB). */
async function sampled<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ value: T; peakRssKiB: number[] }> {
  const peaks = pids.map((p) => memoryKiB(p)?.rss ?? 0);
  const sample = () =>
    pids.forEach((p, i) => {
      const m = memoryKiB(p);
      if (m && m.rss > peaks[i]) peaks[i] = m.rss;
    });
  const timer = setInterval(sample, 100);
  try {
    const value = await work();
    sample();
    return { value, peakRssKiB: peaks };
  } finally {
    clearInterval(timer);
  }
}

export interface Target {
  port: number;
  host: string;
}

export async function latency(
  loadgen: string,
  t: Target,
  o: { rate: number; durationS: number; warmupS: number; connections: number },
  pids: readonly number[],
): Promise<LatencyResult> {
  const args = ['-p', String(t.port), '-H', t.host, '-r', String(o.rate), '-d', String(o.durationS), '-w', String(o.warmupS), '-c', String(o.connections)];
  const { value, peakRssKiB } = await sampled(pids, () =>
    run(loadgen, args, { timeout: (o.durationS + o.warmupS + 15) * 1000, maxBuffer: 1 << 20 }),
  );
  return { ...(JSON.parse(value.stdout) as Omit<LatencyResult, 'peakRssKiB'>), peakRssKiB };
}

export async function throughput(t: Target, o: { durationS: number; connections: number }, pids: readonly number[]): Promise<ThroughputResult> {
  const cpuBefore = pids.reduce((s, p) => s + cpuSeconds(p), 0);
  const started = performance.now();
  const { value, peakRssKiB } = await sampled(pids, () =>
    run('wrk', ['-t1', `-c${o.connections}`, `-d${o.durationS}s`, '-H', `Host: ${t.host}`, `http://127.0.0.1:${t.port}/`], {
      timeout: (o.durationS + 20) * 1000,
    }),
  );
  const wallS = (performance.now() - started) / 1000;
  const proxyCpuS = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpuBefore;
  const out = value.stdout;
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
  const requests = num(/(\d+) requests in/);
  const rps = num(/Requests\/sec:\s+([\d.]+)/);
  const socketErrors = (/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)?.slice(1) ?? []).reduce((s, x) => s + Number(x), 0);
  // wrk's own measured span is a little shorter than our wall time; CPU share uses our span,
  // and requests per proxy CPU-second needs no span at all.
  return {
    connections: o.connections,
    durationS: o.durationS,
    requests,
    rps,
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors,
    proxyCpuS,
    proxyCpuShare: pids.length ? proxyCpuS / wallS : 0,
    rpsPerProxyCore: pids.length && proxyCpuS > 0 ? requests / proxyCpuS : NaN,
    peakRssKiB,
  };
}

export async function sse(
  node: string,
  client: string,
  t: Target,
  o: { streams: number; events: number; gapMs: number },
  pids: readonly number[],
): Promise<SseResult & { peakRssKiB: number[] }> {
  const { value, peakRssKiB } = await sampled(pids, () =>
    run(node, [client, String(t.port), t.host, String(o.streams), String(o.events), String(o.gapMs)], {
      timeout: o.events * o.gapMs + 20_000,
    }),
  );
  return { ...(JSON.parse(value.stdout) as SseResult), peakRssKiB };
}
