// `npm run bench`: Weft's proxy side by side with HAProxy, nginx and a minimal Node.js proxy, in one run.
//
// Phases, in order: install the tools (scripts/ensure-bench-tools.sh) → start the upstreams and
// every path → smoke-check each path → idle memory → warm-up → R rounds, each measuring every path
// (in an order rotated per round) for latency at fixed rates, closed-loop throughput and SSE →
// memory after load → how fast a file edit reaches every proxy → stop everything → configuration
// scale (1000 services × 10 endpoints; 1 vs 1000 routes). Then the tables and the JSON.
//
// Every proxy under test runs on CPU 0; this process, the load generators and the upstreams run
// on CPU 1. Every process started is stopped by its process group id, on error and on Ctrl-C too.
//
// Usage: node bench/run.ts [--quick] [--rounds N] [--weft-ref GIT_REF] [--skip-scale] [--profile]
//        node bench/run.ts --report bench/results/FILE.json   (print a results file's tables again)

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  childrenOf,
  cpuCount,
  freePort,
  killAllNow,
  memoryKiB,
  pinSelf,
  processesMentioning,
  startProcess,
  stopAll,
  stopProcess,
  waitForPort,
} from './lib/procs.ts';
import { changeProbe, haproxyConf, nginxProxyConf, routeScaleMesh, BODY_BYTES } from './lib/configs.ts';
import { exportWeft, weftUp, writeBenchMesh, type RunningWeft } from './lib/weft.ts';
import { buildLoadgen, latency, sse, throughput, type Target } from './lib/measure.ts';
import { startUpstreamNginx } from './lib/upstream.ts';
import { summarise, printReport, type RawResults, type PathId, type Round, PATH_LABELS } from './lib/report.ts';
import { spread } from './lib/stats.ts';
import { profileWeft } from './lib/profile.ts';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const REPO = fileURLToPath(new URL('..', import.meta.url));
const PROXY_CPU = 0;
const LOAD_CPU = 1;

export interface Settings {
  quick: boolean;
  rounds: number;
  rates: number[];
  latencyS: number;
  latencyWarmupS: number;
  latencyConnections: number;
  throughputS: number;
  throughputConnections: number;
  sseStreams: number;
  sseEvents: number;
  sseGapMs: number;
  /** Hold-back probe: few events, long gaps, so a held event stands out from any scheduler stall. */
  holdStreams: number;
  holdEvents: number;
  holdGapMs: number;
  warmupS: number;
  settleS: number;
  fileChanges: number;
  scale: boolean;
  scaleServices: number;
  scaleEndpoints: number;
  scaleProxies: number;
  scaleChanges: number;
  routes: number;
  routeRounds: number;
  routeS: number;
}

function parseArgs(argv: string[]): { settings: Settings; weftRef?: string; profile: boolean; report?: string } {
  const has = (f: string) => argv.includes(f);
  const value = (f: string) => {
    const i = argv.indexOf(f);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) usage(`${f} needs a value`);
    return v;
  };
  for (const a of argv)
    if (a.startsWith('--') && !['--quick', '--rounds', '--weft-ref', '--skip-scale', '--profile', '--report', '--help'].includes(a)) usage(`unknown option ${a}`);
  if (has('--help')) usage();
  const quick = has('--quick');
  const rounds = Number(value('--rounds') ?? (quick ? 1 : 3));
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) usage('--rounds must be an integer from 1 to 20');
  const settings: Settings = quick
    ? {
        quick, rounds, rates: [1000, 5000], latencyS: 2, latencyWarmupS: 0.5, latencyConnections: 32,
        throughputS: 2, throughputConnections: 64, sseStreams: 6, sseEvents: 20, sseGapMs: 10,
        holdStreams: 2, holdEvents: 4, holdGapMs: 100,
        warmupS: 1, settleS: 1, fileChanges: 1, scale: !has('--skip-scale'),
        scaleServices: 1000, scaleEndpoints: 10, scaleProxies: 1, scaleChanges: 1,
        routes: 1000, routeRounds: 1, routeS: 2,
      }
    : {
        quick, rounds, rates: [1000, 5000], latencyS: 5, latencyWarmupS: 0.5, latencyConnections: 32,
        throughputS: 5, throughputConnections: 64, sseStreams: 20, sseEvents: 50, sseGapMs: 10,
        holdStreams: 4, holdEvents: 5, holdGapMs: 100,
        warmupS: 3, settleS: 3, fileChanges: 3, scale: !has('--skip-scale'),
        scaleServices: 1000, scaleEndpoints: 10, scaleProxies: 2, scaleChanges: 5,
        routes: 1000, routeRounds: 3, routeS: 4,
      };
  return { settings, weftRef: value('--weft-ref'), profile: has('--profile'), report: value('--report') };
}

function usage(problem?: string): never {
  const text = `Usage: node bench/run.ts [--quick] [--rounds N] [--weft-ref GIT_REF] [--skip-scale] [--profile]
       node bench/run.ts --report bench/results/FILE.json

  --quick          one round, short runs (about 1.5 minutes): for iterating
  --rounds N       rounds of interleaved measurements (default 3)
  --weft-ref REF   measure Weft as committed at REF (git archive) instead of the working tree
  --skip-scale     leave out the configuration-scale phase
  --profile        instead of the benchmark: CPU-profile Weft's proxies under load and print
                   the functions with the most self time
  --report FILE    print the tables of a results file again (no measuring)
`;
  if (problem) {
    process.stderr.write(`bench: ${problem}\n\n${text}`);
    process.exit(2);
  }
  process.stdout.write(text);
  process.exit(0);
}

const say = (l: string) => process.stderr.write(`bench: ${l}\n`);

/** Set on Ctrl-C / SIGTERM: the measuring loops stop at their next step while everything is stopped. */
let interrupted = false;
function stopIfInterrupted(): void {
  if (interrupted) throw new Error('interrupted');
}

/** One GET with a Host header; resolves with status and body. */
function get(port: number, host: string, path: string, timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} (Host: ${host}) on port ${port} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** A tool's version from its own output (nginx prints it on stderr, wrk exits 1 after printing it). */
function versionOf(cmd: string, args: string[], re: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return re.exec(`${r.stdout ?? ''}${r.stderr ?? ''}`)?.[1] ?? 'unknown';
}

function gitInfo(): { commit: string; dirty: string[] } {
  try {
    const commit = execFileSync('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['-C', REPO, 'status', '--porcelain', '--', 'src', 'bin'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: [] };
  }
}

/** A failure the user can act on: printed as one line, without a stack. */
class BenchError extends Error {}

interface PathRuntime {
  id: PathId;
  main: Target;
  sse: Target;
  /** Proxy processes on the 1 KiB path and on the SSE path (CPU time and memory are theirs). */
  mainPids: () => number[];
  ssePids: () => number[];
  /** Named proxy processes, for the memory table. */
  processes: () => Array<{ name: string; pid: number }>;
}

async function main(): Promise<void> {
  const { settings, weftRef, profile, report } = parseArgs(process.argv.slice(2));
  if (report) {
    const raw = JSON.parse(await readFile(report, 'utf8')) as RawResults;
    raw.summary = summarise(raw);
    process.stdout.write(printReport(raw) + '\n');
    return;
  }
  if (process.platform !== 'linux') throw new BenchError('the benchmark reads /proc and pins CPUs with taskset: it runs on Linux only');
  const nCpu = cpuCount();
  if (nCpu < 2) throw new BenchError(`the benchmark pins proxies and load to separate CPUs and needs 2; this machine has ${nCpu}`);

  say('checking tools (scripts/ensure-bench-tools.sh)');
  execFileSync('bash', [join(REPO, 'scripts', 'ensure-bench-tools.sh')], { stdio: 'inherit' });

  const tmp = await mkdtemp(join(tmpdir(), 'weft-bench-'));
  const onSignal = (sig: string) => {
    if (interrupted) {
      killAllNow();
      process.exit(130);
    }
    interrupted = true;
    say(`${sig}: stopping everything started…`);
    void stopAll(3000).finally(() => {
      void rm(tmp, { recursive: true, force: true }).finally(() => process.exit(130));
    });
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('exit', killAllNow);

  try {
    // This process and all it starts run on the load CPU unless told otherwise.
    pinSelf(LOAD_CPU);
    const loadgen = buildLoadgen(tmp);
    const weftRoot = weftRef ? await exportWeft(weftRef, tmp).catch((err: Error) => Promise.reject(new BenchError(err.message))) : REPO;
    if (profile) {
      await profileWeft({ tmp, weftRoot, proxyCpu: PROXY_CPU, loadCpu: LOAD_CPU, durationS: settings.quick ? 4 : 10 });
      return;
    }
    const results = await benchmark(settings, tmp, loadgen, weftRoot, weftRef);
    const summary = summarise(results);
    results.summary = summary;
    process.stdout.write(printReport(results) + '\n');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
    const dir = join(BENCH, 'results');
    await mkdir(dir, { recursive: true });
    const name = `${stamp}${settings.quick ? '-quick' : ''}.json`;
    const text = JSON.stringify(results, null, 1) + '\n';
    await writeFile(join(dir, name), text);
    // Only full runs become "latest": quick runs are for iterating.
    if (!settings.quick) await writeFile(join(dir, 'latest.json'), text);
    say(`raw results: bench/results/${name}${settings.quick ? '' : ' (and bench/results/latest.json)'}`);
  } finally {
    await stopAll(5000);
    const left = processesMentioning(tmp);
    for (const p of left) {
      say(`still running after stop, killing: ${p.pid} ${p.cmdline}`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await rm(tmp, { recursive: true, force: true });
  }
}

async function benchmark(s: Settings, tmp: string, loadgen: string, weftRoot: string, weftRef: string | undefined): Promise<RawResults> {
  const git = gitInfo();
  const t0 = Date.now();
  // Other work on the machine shows here; the same-round ratios are what stays meaningful.
  const loadAtStart = loadavg();
  const busyAtStart = await cpuBusy(1000);
  if (busyAtStart > 0.1)
    say(`note: the CPUs were ${Math.round(busyAtStart * 100)} % busy before the run — other work is running on this machine; expect noisier numbers (ratios within a round stay comparable)`);
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  const node = process.execPath;

  // ---- upstreams (load CPU) -------------------------------------------------------------------
  const { port: upPort } = await startUpstreamNginx(tmp, LOAD_CPU);
  const ssePort = await freePort();
  const sseServer = startProcess('sse server', node, [join(BENCH, 'sse-server.ts'), String(ssePort)], { cpu: LOAD_CPU });
  await waitForPort(ssePort, 10_000, 'the SSE server', sseServer);

  // ---- proxies under test (proxy CPU) ---------------------------------------------------------
  const haPort = await freePort();
  const haDir = join(tmp, 'haproxy');
  await mkdir(haDir);
  await writeFile(join(haDir, 'haproxy.cfg'), haproxyConf(haPort, upPort, ssePort));
  const haproxy = startProcess('haproxy', 'haproxy', ['-db', '-f', join(haDir, 'haproxy.cfg')], { cpu: PROXY_CPU });

  const ngPort = await freePort();
  const ngDir = join(tmp, 'nginx-proxy');
  await mkdir(ngDir);
  await writeFile(join(ngDir, 'nginx.conf'), nginxProxyConf(ngDir, ngPort, upPort, ssePort));
  const nginx = startProcess('nginx proxy', 'nginx', ['-e', join(ngDir, 'error.log'), '-c', join(ngDir, 'nginx.conf'), '-g', 'daemon off;'], {
    cpu: PROXY_CPU,
  });

  const minPort = await freePort();
  const minimal = startProcess('minimal node proxy', node, [join(BENCH, 'minimal-proxy.ts'), String(minPort), String(upPort), String(ssePort)], {
    cpu: PROXY_CPU,
  });

  const { meshDir, probePort } = await writeBenchMesh(tmp, { upstreamPort: upPort, ssePort, node, appCpu: LOAD_CPU });
  const edgePort = await freePort();
  say('starting weft up (edge, 3 workloads with sidecars)');
  const weft = await weftUp({ root: weftRoot, meshDir, edgePort, stateDir: join(tmp, 'weft-state'), cpu: PROXY_CPU });
  const edge = await weft.proxy('weft-system/edge');
  const client = await weft.proxy('default/bench-client-0');
  const meshUp = await weft.proxy('default/mesh-upstream-0');
  const meshSse = await weft.proxy('default/mesh-sse-0');
  const clientPort = Number(client.listeners.outbound!.split(':').pop());

  await waitForPort(haPort, 10_000, 'HAProxy', haproxy);
  await waitForPort(ngPort, 10_000, 'the nginx proxy', nginx);
  await minimal.waitFor(/listening/, 10_000);
  const nginxPids = () => [nginx.pid, ...childrenOf(nginx.pid)];

  const paths: PathRuntime[] = [
    {
      id: 'direct',
      main: { port: upPort, host: 'bench-upstream' },
      sse: { port: ssePort, host: 'bench-sse' },
      mainPids: () => [],
      ssePids: () => [],
      processes: () => [],
    },
    {
      id: 'haproxy',
      main: { port: haPort, host: 'bench-upstream' },
      sse: { port: haPort, host: 'bench-sse' },
      mainPids: () => [haproxy.pid],
      ssePids: () => [haproxy.pid],
      processes: () => [{ name: 'haproxy', pid: haproxy.pid }],
    },
    {
      id: 'nginx',
      main: { port: ngPort, host: 'bench-upstream' },
      sse: { port: ngPort, host: 'bench-sse' },
      mainPids: nginxPids,
      ssePids: nginxPids,
      processes: () => nginxPids().map((pid, i) => ({ name: i === 0 ? 'nginx master' : 'nginx worker', pid })),
    },
    {
      id: 'node-minimal',
      main: { port: minPort, host: 'bench-upstream' },
      sse: { port: minPort, host: 'bench-sse' },
      mainPids: () => [minimal.pid],
      ssePids: () => [minimal.pid],
      processes: () => [{ name: 'minimal-proxy.ts', pid: minimal.pid }],
    },
    {
      id: 'weft-edge',
      main: { port: edgePort, host: 'bench-upstream' },
      sse: { port: edgePort, host: 'bench-sse' },
      mainPids: () => [edge.pid!],
      ssePids: () => [edge.pid!],
      processes: () => [{ name: 'weft edge proxy', pid: edge.pid! }],
    },
    {
      id: 'weft-mesh',
      main: { port: clientPort, host: 'mesh-upstream' },
      sse: { port: clientPort, host: 'mesh-sse' },
      mainPids: () => [client.pid!, meshUp.pid!],
      ssePids: () => [client.pid!, meshSse.pid!],
      processes: () => [
        { name: 'client sidecar', pid: client.pid! },
        { name: 'server sidecar', pid: meshUp.pid! },
      ],
    },
  ];

  // ---- smoke check: every path answers the 1 KiB body and streams events ------------------------
  for (const p of paths) {
    const r = await get(p.main.port, p.main.host, '/');
    if (r.status !== 200 || r.body.length !== BODY_BYTES)
      throw new Error(`${PATH_LABELS[p.id]}: GET / answered ${r.status} with ${r.body.length} bytes (want 200, ${BODY_BYTES}): ${r.body.slice(0, 200)}`);
    const e = await get(p.sse.port, p.sse.host, '/sse?n=3&gap=5');
    if (e.status !== 200 || (e.body.match(/^data: /gm) ?? []).length !== 3)
      throw new Error(`${PATH_LABELS[p.id]}: the SSE stream answered ${e.status}: ${e.body.slice(0, 200)}`);
  }
  say(`every path answers (${elapsed()})`);

  const memory: RawResults['memory'] = {};
  const rssOf = (p: PathRuntime) => p.processes().map((x) => ({ ...x, kib: memoryKiB(x.pid)?.rss ?? NaN }));
  await sleep(s.settleS * 1000);
  for (const p of paths) if (p.processes().length) memory[p.id] = { idle: rssOf(p), after: [], hwm: [] };
  // The mesh-sse sidecar is on the streaming path only; recorded for completeness.
  const meshSseIdle = memoryKiB(meshSse.pid!)?.rss ?? NaN;

  // ---- warm-up: JIT, connection pools -----------------------------------------------------------
  say(`warm-up: ${s.warmupS} s closed-loop per path`);
  for (const p of paths) {
    stopIfInterrupted();
    await throughput(p.main, { durationS: s.warmupS, connections: s.throughputConnections }, []);
  }

  // ---- rounds -----------------------------------------------------------------------------------
  const rounds: Round[] = [];
  for (let r = 0; r < s.rounds; r++) {
    // Rotate the order each round so no path always runs first or last.
    const order = paths.map((_, i) => paths[(i + r) % paths.length]);
    const round: Round = { round: r + 1, order: order.map((p) => p.id), latency: {}, throughput: {}, sse: {}, sseHold: {} };
    for (const rate of s.rates) {
      round.latency[rate] = {};
      for (const p of order) {
        stopIfInterrupted();
        say(`round ${r + 1}/${s.rounds}: ${rate} req/s through ${PATH_LABELS[p.id]} (${elapsed()})`);
        round.latency[rate][p.id] = await latency(
          loadgen,
          p.main,
          { rate, durationS: s.latencyS, warmupS: s.latencyWarmupS, connections: s.latencyConnections },
          p.mainPids(),
        );
      }
    }
    for (const p of order) {
      stopIfInterrupted();
      say(`round ${r + 1}/${s.rounds}: closed-loop throughput through ${PATH_LABELS[p.id]} (${elapsed()})`);
      round.throughput[p.id] = await throughput(p.main, { durationS: s.throughputS, connections: s.throughputConnections }, p.mainPids());
    }
    for (const p of order) {
      stopIfInterrupted();
      say(`round ${r + 1}/${s.rounds}: server-sent events through ${PATH_LABELS[p.id]} (${elapsed()})`);
      round.sse[p.id] = await sse(node, join(BENCH, 'sse-client.ts'), p.sse, { streams: s.sseStreams, events: s.sseEvents, gapMs: s.sseGapMs }, p.ssePids());
      round.sseHold[p.id] = await sse(node, join(BENCH, 'sse-client.ts'), p.sse, { streams: s.holdStreams, events: s.holdEvents, gapMs: s.holdGapMs }, p.ssePids());
    }
    rounds.push(round);
  }

  await sleep(s.settleS * 1000);
  for (const p of paths) {
    const m = memory[p.id];
    if (!m) continue;
    m.after = rssOf(p);
    m.hwm = p.processes().map((x) => ({ ...x, kib: memoryKiB(x.pid)?.hwm ?? NaN }));
  }

  // ---- a file edit reaching every proxy (weft up's own path: watch → load → translate → push → ACK) -
  const fileChangeMs: number[] = [];
  for (let c = 0; c < s.fileChanges; c++) fileChangeMs.push(await timeFileChange(weft, join(meshDir, 'change-probe.yaml'), probePort, c + 2));
  say(`a file edit reached every proxy in ${fileChangeMs.map((m) => m.toFixed(0)).join(', ')} ms`);

  const procNames = Object.fromEntries(paths.map((p) => [p.id, p.processes().map((x) => x.name)]));
  await weft.stop();
  await stopProcess(haproxy);
  await stopProcess(nginx);
  await stopProcess(minimal);

  // ---- configuration scale --------------------------------------------------------------------
  stopIfInterrupted();
  let scale: RawResults['scale'] = { notMeasured: [] };
  if (s.scale) scale = await scalePhase(s, tmp, weftRoot, upPort, elapsed);
  else scale.notMeasured.push('configuration scale: skipped (--skip-scale)');

  return {
    meta: {
      date: new Date().toISOString(),
      weft: { source: weftRef ? `git ${weftRef}` : 'working tree', commit: git.commit, uncommittedInSrc: weftRef ? [] : git.dirty },
      node: process.version,
      haproxy: versionOf('haproxy', ['-v'], /version (\S+)/),
      nginx: versionOf('nginx', ['-v'], /nginx\/(\S+)/),
      wrk: versionOf('wrk', ['-v'], /wrk (\S+)/),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      kernel: release(),
      pinning: { proxies: `CPU ${PROXY_CPU}`, loadAndUpstreams: `CPU ${LOAD_CPU}` },
      loadAverage: { atStart: loadAtStart, atEnd: loadavg() },
      cpuBusyBeforeRun: busyAtStart,
      durationS: (Date.now() - t0) / 1000,
    },
    settings: s,
    processes: procNames,
    memory,
    meshSseSidecarIdleKiB: meshSseIdle,
    rounds,
    fileChangeMs: spread(fileChangeMs),
    scale,
  };
}

/** Share of all CPUs' time spent busy over the next `ms` (from /proc/stat): other work on the machine. */
async function cpuBusy(ms: number): Promise<number> {
  const read = async () => {
    const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  return b.total > a.total ? 1 - (b.idle - a.idle) / (b.total - a.total) : 0;
}

/** Edits the probe's endpoint weight and times until weft up says every proxy applied it. */
async function timeFileChange(weft: RunningWeft, file: string, port: number, weight: number): Promise<number> {
  const versions = () => [...weft.proc.output().matchAll(/configuration (?:applied: )?version (\d+)/g)].map((m) => Number(m[1]));
  const before = Math.max(0, ...versions());
  const t = performance.now();
  await writeFile(file, changeProbe(port, weight));
  await weft.proc.waitFor(new RegExp(`configuration applied: version ${before + 1}\\b`), 30_000);
  return performance.now() - t;
}

async function scalePhase(
  s: Settings,
  tmp: string,
  weftRoot: string,
  upPort: number,
  elapsed: () => string,
): Promise<RawResults['scale']> {
  const out: RawResults['scale'] = { notMeasured: [] };
  say(`configuration scale: ${s.scaleServices} services × ${s.scaleEndpoints} endpoints to ${s.scaleProxies} proxies (${elapsed()})`);
  const cs = startProcess(
    'config-scale',
    process.execPath,
    [
      join(BENCH, 'config-scale.ts'),
      '--root', weftRoot,
      '--services', String(s.scaleServices),
      '--endpoints', String(s.scaleEndpoints),
      '--proxies', String(s.scaleProxies),
      '--changes', String(s.scaleChanges),
      '--proxy-cpu', String(PROXY_CPU),
    ],
    {},
  );
  // Bounded: at this size the current control plane needs tens of seconds; give it 4 minutes.
  const timer = setTimeout(() => void stopProcess(cs, 2000), 240_000);
  const code = await cs.exited;
  clearTimeout(timer);
  const last = cs.output().trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (code === 0 && last) out.config = JSON.parse(last);
  else out.notMeasured.push(`configuration scale: config-scale.ts exited ${code}: ${cs.output().slice(-500)}`);

  // 1 route vs N routes on the edge, interleaved.
  say(`route scale: 1 vs ${s.routes} routes on the edge (${elapsed()})`);
  const meshDir = join(tmp, 'route-mesh');
  await mkdir(meshDir);
  await writeFile(join(meshDir, 'mesh.yaml'), routeScaleMesh(upPort, s.routes));
  const edgePort = await freePort();
  const weft = await weftUp({ root: weftRoot, meshDir, edgePort, stateDir: join(tmp, 'route-state'), cpu: PROXY_CPU });
  try {
    const edge = await weft.proxy('weft-system/edge');
    const hosts = ['routes-1', `routes-${s.routes}`];
    for (const h of hosts) {
      const r = await get(edgePort, h, '/');
      if (r.status !== 200) throw new Error(`route scale: Host ${h} answered ${r.status}: ${r.body.slice(0, 200)}`);
      await throughput({ port: edgePort, host: h }, { durationS: 1, connections: s.throughputConnections }, []);
    }
    const one: number[] = [];
    const many: number[] = [];
    for (let r = 0; r < s.routeRounds; r++)
      for (const h of r % 2 ? [...hosts].reverse() : hosts) {
        const t = await throughput({ port: edgePort, host: h }, { durationS: s.routeS, connections: s.throughputConnections }, [edge.pid!]);
        (h === 'routes-1' ? one : many).push(t.rpsPerProxyCore);
      }
    out.routes = { routes: s.routes, oneRoute: spread(one), manyRoutes: spread(many), edgeRssKiB: memoryKiB(edge.pid!)?.rss ?? NaN };
  } finally {
    await weft.stop();
  }
  return out;
}

await main().catch(async (err) => {
  if (interrupted) return; // the signal handler is stopping everything and exits
  process.stderr.write(`bench: failed: ${err instanceof BenchError ? err.message : ((err as Error).stack ?? err)}\n`);
  await stopAll(3000);
  process.exit(1);
});
