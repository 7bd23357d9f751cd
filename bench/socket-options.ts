// The socket-level options a Node.js proxy has, each measured on its own (issue 3 asks for it).
//
// Why it exists: besides its own code, a Node proxy can turn three knobs of the platform — Nagle's
// algorithm (`noDelay`), several processes sharing one listening port (a cluster of workers), and
// requests pipelined on an upstream connection (undici's `pipelining`). Weft's choices (noDelay on
// both sides, one process per proxy, one request at a time per upstream connection, as Envoy) are
// decided from this. Each knob is turned on a small proxy that has it, the rest held equal:
// - the probe with Weft's own shape (bench/ceiling/raw-upstream-proxy.ts: node:http downstream,
//   plain keep-alive sockets and llhttp upstream): noDelay on, noDelay off, and two processes
//   sharing its port (`reusePort`), both on the proxy's CPU;
// - the minimal Node proxy (undici Pool) with pipelining 1 and 10.
// Measured per round, paths interleaved: closed-loop requests per proxy CPU-second (wrk -c64),
// latency added at a fixed 1000 req/s (bench/loadgen.c, minus direct in the same round), and for
// noDelay the per-event delay of server-sent events, where Nagle's algorithm would bite.
//
// Usage: node bench/socket-options.ts [--rounds 3] [--seconds 4]

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { haproxyConf } from './lib/configs.ts';
import { buildLoadgen, latency, sse, throughput, type Target } from './lib/measure.ts';
import { freePort, pinSelf, startProcess, stopAll, waitForPort, type Started } from './lib/procs.ts';
import { startUpstreamNginx } from './lib/upstream.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, seconds: { type: 'string', default: '4' } } });
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const BENCH = fileURLToPath(new URL('.', import.meta.url));
const node = process.execPath;
pinSelf(LOAD_CPU);
const tmp = await mkdtemp(join(tmpdir(), 'weft-socket-options-'));
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

/** One proxy set-up: its main target (the 1 KiB upstream), its processes, and an SSE target when streaming is measured. */
interface Path {
  name: string;
  main: Target;
  procs: Started[];
  sse?: Target;
}

try {
  const loadgen = buildLoadgen(tmp);
  const { port: up } = await startUpstreamNginx(tmp, LOAD_CPU);
  const ssePort = await freePort();
  const sseServer = startProcess('sse server', node, [join(BENCH, 'sse-server.ts'), String(ssePort)], { cpu: LOAD_CPU });
  await waitForPort(ssePort, 10_000, 'the SSE server', sseServer);

  const started: Started[] = [];
  /** A Node proxy script on the proxy CPU; resolves with the port it printed. */
  const nodeProxy = async (name: string, script: string, args: string[]): Promise<{ proc: Started; port: number }> => {
    const proc = startProcess(name, node, [join(BENCH, script), ...args], { cpu: PROXY_CPU });
    started.push(proc);
    const m = await proc.waitFor(/listening (?:127\.0\.0\.1:)?(\d+)/, 10_000);
    return { proc, port: Number(m[1]) };
  };
  const host = 'bench-upstream';
  const paths: Path[] = [];
  const direct: Target = { port: up, host };

  const haPort = await freePort();
  await mkdir(join(tmp, 'haproxy'));
  await writeFile(join(tmp, 'haproxy', 'haproxy.cfg'), haproxyConf(haPort, up, ssePort));
  const haproxy = startProcess('haproxy', 'haproxy', ['-db', '-f', join(tmp, 'haproxy', 'haproxy.cfg')], { cpu: PROXY_CPU });
  await waitForPort(haPort, 10_000, 'HAProxy', haproxy);
  paths.push({ name: 'HAProxy (reference)', main: { port: haPort, host }, procs: [haproxy], sse: { port: haPort, host: 'bench-sse' } });

  // Weft's shape, noDelay on and off; for streaming, the same probe in front of the SSE server.
  for (const noDelay of ['on', 'off']) {
    const p = await nodeProxy(`probe noDelay ${noDelay}`, 'ceiling/raw-upstream-proxy.ts', [String(up), '--no-delay', noDelay]);
    const s = await nodeProxy(`probe noDelay ${noDelay} (sse)`, 'ceiling/raw-upstream-proxy.ts', [String(ssePort), '--no-delay', noDelay]);
    paths.push({ name: `node:http + raw upstream sockets, noDelay ${noDelay}`, main: { port: p.port, host }, procs: [p.proc], sse: { port: s.port, host: 'bench-sse' } });
  }
  // Two processes on one port, both on the proxy's CPU: the kernel spreads connections between them.
  const shared = await freePort();
  const workers = [];
  for (let i = 0; i < 2; i++) workers.push((await nodeProxy(`probe worker ${i + 1}`, 'ceiling/raw-upstream-proxy.ts', [String(up), '--port', String(shared), '--reuse-port'])).proc);
  paths.push({ name: 'node:http + raw upstream sockets, 2 processes sharing the port (reusePort)', main: { port: shared, host }, procs: workers });
  for (const pipelining of [1, 10]) {
    const p = await nodeProxy(`minimal proxy pipelining ${pipelining}`, 'minimal-proxy.ts', ['0', String(up), String(ssePort), String(pipelining)]);
    paths.push({ name: `minimal Node proxy (undici Pool), pipelining ${pipelining}`, main: { port: p.port, host }, procs: [p.proc] });
  }

  const rounds = Number(values.rounds);
  const seconds = Number(values.seconds);
  const rows = new Map(paths.map((p) => [p.name, { perCpu: [] as number[], p50: [] as number[], p99: [] as number[], sse50: [] as number[], sse99: [] as number[] }]));
  for (let r = 0; r < rounds; r++) {
    // Rotated each round so drifts of the machine fall on every path alike (as bench/run.ts).
    const order = paths.map((_, i) => paths[(i + r) % paths.length]!);
    const d = await latency(loadgen, direct, { rate: 1000, durationS: 5, warmupS: 1, connections: 32 }, []);
    const dSse = await sse(node, join(BENCH, 'sse-client.ts'), { port: ssePort, host: 'bench-sse' }, { streams: 20, events: 50, gapMs: 10 }, []);
    for (const p of order) {
      process.stderr.write(`socket-options: round ${r + 1}/${rounds}: ${p.name}\n`);
      const pids = p.procs.map((x) => x.pid);
      const t = await throughput(p.main, { durationS: seconds, connections: 64 }, pids);
      if (t.non2xx > 0 || t.socketErrors > 0) throw new Error(`${p.name}: ${t.non2xx} non-2xx answers, ${t.socketErrors} socket errors`);
      const l = await latency(loadgen, p.main, { rate: 1000, durationS: 5, warmupS: 1, connections: 32 }, pids);
      if (l.errors > 0 || l.non2xx > 0) throw new Error(`${p.name}: ${l.errors} errors, ${l.non2xx} non-2xx answers at 1000 req/s`);
      const row = rows.get(p.name)!;
      row.perCpu.push(t.rpsPerProxyCore);
      row.p50.push(l.latencyUs.p50 - d.latencyUs.p50);
      row.p99.push(l.latencyUs.p99 - d.latencyUs.p99);
      if (p.sse) {
        const e = await sse(node, join(BENCH, 'sse-client.ts'), p.sse, { streams: 20, events: 50, gapMs: 10 }, pids);
        if (e.missingEvents > 0 || e.errors > 0) throw new Error(`${p.name}: ${e.missingEvents} events missing, ${e.errors} stream errors`);
        row.sse50.push(e.delayUs.p50 - dSse.delayUs.p50);
        row.sse99.push(e.delayUs.p99 - dSse.delayUs.p99);
      }
    }
  }

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const cell = (xs: number[], f: (x: number) => string) => (xs.length ? `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '–');
  const k = (x: number) => `${(x / 1000).toFixed(1)}k`;
  const us = (x: number) => x.toFixed(0);
  console.log(`Medians (min–max) of ${rounds} interleaved rounds; proxies on CPU ${PROXY_CPU}, wrk, the load generator and the upstreams on CPU ${LOAD_CPU}.\n`);
  console.log('| path | req per proxy CPU-second | added p50 at 1000 req/s (µs) | added p99 at 1000 req/s (µs) | SSE: added delay per event p50 / p99 (µs) |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [name, r] of rows) {
    const streaming = r.sse50.length ? `${cell(r.sse50, us)} / ${cell(r.sse99, us)}` : '–';
    console.log(`| ${name} | ${cell(r.perCpu, k)} | ${cell(r.p50, us)} | ${cell(r.p99, us)} | ${streaming} |`);
  }
} finally {
  await stopAll();
  await rm(tmp, { recursive: true, force: true });
}
process.exit(process.exitCode ?? 0);
