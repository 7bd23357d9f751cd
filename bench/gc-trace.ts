// A proxy's garbage collection under open-loop load: RSS, young-generation survival and scavenge pauses, per set of Node options.
//
// Why it exists: Weft's tails at 5000 req/s follow its scavenges (docs/performance.md, "Garbage
// collection"). This runs the bench mesh under `weft up` (proxies on CPU 0, upstream and load on
// CPU 1), drives the edge at 1000 then 5000 req/s with bench/loadgen.c, and reads V8's
// `--trace-gc-nvp` lines from the edge (turned on by a preloaded module, because Node refuses
// trace flags in NODE_OPTIONS). Each variant is a fresh `weft up`.
//
// Usage: node bench/gc-trace.ts [--path edge|mesh] [--runs N] [--warmup SECONDS] [--memory] [--variant 'NAME=NODE OPTIONS']...
//   e.g. --variant 'semi4=--max-semi-space-size=4'  or  --variant 'arena2=MALLOC_ARENA_MAX=2'  (default: one variant with no options)
//   --path mesh loads the client sidecar (client sidecar → server sidecar → app) and reports
//   each sidecar's scavenges on a row of its own; RSS is the client sidecar's.
//   --warmup (default 10 s) is the load at each rate before the measured 5 s: young Node
//   processes keep much more of new space alive than warm ones (the minimal Node proxy needs
//   about 13 s at 1000 req/s), and the full benchmark measures warm proxies.
//   --memory adds a table of where the proxy's resident memory is, idle and 3 s into each measured
//   run: the kernel's view (smaps: file-backed, glibc malloc arenas, WASM reservations, other
//   anonymous) beside V8's (committed and resident heap by space, off-heap). The proxy prints V8's
//   numbers when sent SIGUSR2 (the preloaded module installs the handler).

import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, memoryKiB, stopAll } from './lib/procs.ts';
import { startUpstreamNginx } from './lib/upstream.ts';
import { writeBenchMesh, weftUp } from './lib/weft.ts';
import { buildLoadgen, latency } from './lib/measure.ts';
import { percentile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    variant: { type: 'string', multiple: true },
    runs: { type: 'string', default: '1' },
    path: { type: 'string', default: 'edge' },
    warmup: { type: 'string', default: '10' },
    memory: { type: 'boolean', default: false },
  },
});
if (values.path !== 'edge' && values.path !== 'mesh') throw new Error(`--path is edge or mesh, not ${values.path}`);
/** The proxies whose scavenges count, by the prefix weft up puts on their output lines. */
const traced = values.path === 'edge' ? ['[weft-system/edge'] : ['[default/bench-client-0', '[default/mesh-upstream-0'];
/** A variant's words: `NAME=value` in capitals sets an environment variable (e.g. MALLOC_ARENA_MAX=2), the rest are Node options. */
const variants = (values.variant ?? ['default=']).map((v) => {
  const eq = v.indexOf('=');
  const words = v.slice(eq + 1).split(/\s+/).filter(Boolean);
  const isEnv = (w: string) => /^[A-Z_][A-Z0-9_]*=/.test(w);
  const env = Object.fromEntries(words.filter(isEnv).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
  return { name: v.slice(0, eq), nodeOptions: words.filter((w) => !isEnv(w)).join(' '), env };
});

const tmp = await mkdtemp(join(tmpdir(), 'weft-gc-trace-'));
const loadgen = buildLoadgen(tmp);
const traceModule = join(tmp, 'trace-gc.mjs');
await writeFile(
  traceModule,
  `import v8 from 'node:v8';
v8.setFlagsFromString('--trace-gc-nvp');
// On SIGUSR2: V8's view of this process's memory (MiB), one line, for --memory.
let n = 0;
const mib = (x) => Math.round(x / 2 ** 17) / 8;
process.on('SIGUSR2', () => {
  const spaces = {};
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = { committed: mib(s.space_size), resident: mib(s.physical_space_size), used: mib(s.space_used_size) };
  const h = v8.getHeapStatistics();
  const u = process.memoryUsage();
  const line = { n: ++n, spaces, heapResident: mib(h.total_physical_size), malloced: mib(h.malloced_memory), external: mib(u.external), arrayBuffers: mib(u.arrayBuffers), rss: mib(u.rss) };
  process.stderr.write('weft-mem ' + JSON.stringify(line) + '\\n');
});
`,
);

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

/** The traced proxies' scavenge lines in `output` (kept capped by procs.ts, so compare lines, not offsets). */
function scavengeLines(output: string): string[] {
  return output.split('\n').filter((line) => traced.some((t) => line.startsWith(t)) && line.includes(' gc=s '));
}

/** The scavenges of the proxy whose lines start with `prefix`, printed after the line `after` (all of them if it is gone or absent). */
function scavenges(output: string, after: string | undefined, prefix: string): Array<{ pauseMs: number; survivePct: number; promotedMiB: number; allocatedKiB: number; newSpaceMiB: number }> {
  const all = scavengeLines(output);
  const lines = all.slice(after === undefined ? 0 : all.lastIndexOf(after) + 1).filter((line) => line.startsWith(prefix));
  const out = [];
  for (const line of lines) {
    const field = (name: string) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1]);
    out.push({
      pauseMs: field('pause'),
      survivePct: field('new_space_survive_rate_'),
      promotedMiB: field('promoted') / 2 ** 20,
      allocatedKiB: field('allocated') / 1024,
      newSpaceMiB: field('new_space_capacity') / 2 ** 20,
    });
  }
  return out;
}

/** One proxy's resident memory (MiB) as the kernel sees it, from /proc/PID/smaps, by what the mappings hold. */
async function residentByKind(pid: number): Promise<Record<string, number>> {
  type Mapping = { start: number; end: number; perms: string; path: string; rss: number; anon: number; sharedClean: number };
  const maps: Mapping[] = [];
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) maps.push({ start: parseInt(head[1], 16), end: parseInt(head[2], 16), perms: head[3], path: head[4], rss: 0, anon: 0, sharedClean: 0 });
    const field = /^(Rss|Anonymous|Shared_Clean):\s+(\d+) kB/.exec(line);
    const m = maps.at(-1);
    if (field && m) m[field[1] === 'Rss' ? 'rss' : field[1] === 'Anonymous' ? 'anon' : 'sharedClean'] += Number(field[2]) / 1024;
  }
  const ARENA = 64 * 2 ** 20; // glibc's per-thread malloc arenas: 64 MiB-aligned reservations, the used part read-write
  const none = (m: Mapping | undefined, at: number) => m !== undefined && m.path === '' && m.perms === '---p' && (m.start === at || m.end === at);
  const out: Record<string, number> = { 'file (shared clean)': 0, 'file (private)': 0, 'malloc main arena': 0, 'malloc other arenas': 0, 'WASM memory': 0, 'thread stacks': 0, 'other anonymous': 0 };
  maps.forEach((m, i) => {
    const prev = maps[i - 1];
    const next = maps[i + 1];
    if (m.path.startsWith('/')) {
      out['file (shared clean)'] += m.sharedClean;
      out['file (private)'] += m.rss - m.sharedClean;
    } else if (m.path === '[heap]') out['malloc main arena'] += m.rss;
    else if (m.path === '[stack]') out['thread stacks'] += m.rss;
    else if (m.path !== '') out['other anonymous'] += m.rss; // [vdso], [vvar], …
    else if (m.start % ARENA === 0 && (m.end - m.start === ARENA || (none(next, m.end) && next!.end - m.start === ARENA))) out['malloc other arenas'] += m.rss;
    // WebAssembly memories (undici's llhttp) reserve gigabytes and make the used part read-write.
    else if ([prev, next].some((x) => none(x, x === prev ? m.start : m.end) && x!.end - x!.start >= 2 ** 30)) out['WASM memory'] += m.rss;
    // Thread stacks: a guard page just below a read-write mapping of a MiB or more.
    else if (none(prev, m.start) && prev!.end - prev!.start <= 64 * 1024 && m.end - m.start >= 2 ** 20) out['thread stacks'] += m.rss;
    else out['other anonymous'] += m.rss;
  });
  return out;
}

/** What the preloaded module prints on SIGUSR2 (MiB). */
interface V8Memory {
  n: number;
  spaces: Record<string, { committed: number; resident: number; used: number }>;
  heapResident: number;
  malloced: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

/** The proxy's V8 numbers (MiB): sends it SIGUSR2 and waits for the `weft-mem` line with the next number (counted per process). */
const memRequests = new Map<number, number>();
async function v8Memory(pid: number, output: () => string, prefix: string): Promise<V8Memory | undefined> {
  const want = (memRequests.get(pid) ?? 0) + 1;
  memRequests.set(pid, want);
  process.kill(pid, 'SIGUSR2');
  for (let i = 0; i < 100; i++) {
    await sleep(20);
    for (const line of output().split('\n')) {
      if (!line.startsWith(prefix) || !line.includes(' weft-mem ')) continue;
      const v = JSON.parse(line.slice(line.indexOf(' weft-mem ') + 10)) as V8Memory;
      if (v.n === want) return v;
    }
  }
  return undefined;
}

/** One column of the --memory table: the kernel's and V8's view at one moment. */
async function memoryColumn(pid: number, output: () => string, prefix: string): Promise<Record<string, number>> {
  const [v, kernel] = await Promise.all([v8Memory(pid, output, prefix), residentByKind(pid)]);
  const col: Record<string, number> = { 'RSS (kernel)': Object.values(kernel).reduce((a, b) => a + b, 0), ...kernel };
  if (!v) return col;
  const space = (name: string) => v.spaces[name] ?? { committed: NaN, resident: NaN };
  for (const [label, name] of [
    ['new space', 'new_space'],
    ['old space', 'old_space'],
    ['code space', 'code_space'],
    ['large objects', 'large_object_space'],
    ['new large objects', 'new_large_object_space'],
    ['shared/read-only/trusted', ''],
  ] as const) {
    if (name) {
      col[`V8 ${label} committed`] = space(name).committed;
      col[`V8 ${label} resident`] = space(name).resident;
    } else {
      const rest = Object.entries(v.spaces).filter(([k]) => !['new_space', 'old_space', 'code_space', 'large_object_space', 'new_large_object_space'].includes(k));
      col[`V8 ${label} resident`] = rest.reduce((a, [, x]) => a + x.resident, 0);
    }
  }
  for (const [space, x] of Object.entries(v.spaces)) if (space === 'old_space' || space === 'new_space') col[`V8 ${space.replace('_space', ' space')} used`] = x.used;
  col['V8 heap resident (all spaces)'] = v.heapResident;
  col["V8's own malloc"] = v.malloced;
  col['external (Buffers, …)'] = v.external;
  col['of which ArrayBuffers'] = v.arrayBuffers;
  col['anonymous not V8 heap'] = kernel['other anonymous'] + kernel['malloc main arena'] + kernel['malloc other arenas'] - v.heapResident;
  return col;
}

/** Prints the --memory table of one variant: a row per quantity, a column per moment. */
function printMemory(name: string, columns: Array<[string, Record<string, number>]>): void {
  console.log(`\nResident memory of the proxy, variant ${name} (MiB; kernel: smaps by mapping, V8: heap statistics):\n`);
  console.log(`| | ${columns.map(([c]) => c).join(' | ')} |`);
  console.log(`| --- | ${columns.map(() => '---:').join(' | ')} |`);
  for (const row of new Set(columns.flatMap(([, c]) => Object.keys(c)))) console.log(`| ${row} | ${columns.map(([, c]) => (c[row] ?? NaN).toFixed(1)).join(' | ')} |`);
  console.log('');
}

/** The --memory tables, printed after the main table. */
const memoryTables: Array<[string, Array<[string, Record<string, number>]>]> = [];

try {
  const { port: upPort } = await startUpstreamNginx(tmp, 1);
  console.log('| variant | run | idle RSS MiB | rate | peak RSS MiB | p50 µs (absolute) | p99 µs | failed | proxy | scavenges | pause p50 / max ms | survived p50 % | promoted MiB/s | allocated KiB/request | young generation MiB |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (let run = 1; run <= Number(values.runs); run++) {
    for (const v of variants) {
      const dir = join(tmp, `${v.name}-${run}`);
      await mkdir(dir);
      const { meshDir } = await writeBenchMesh(dir, { upstreamPort: upPort, ssePort: upPort, node: process.execPath, appCpu: 1 });
      const edgePort = await freePort();
      const env = { ...process.env, ...v.env, NODE_OPTIONS: `${v.nodeOptions} --import ${traceModule}`.trim() };
      const weft = await weftUp({ root: fileURLToPath(new URL('..', import.meta.url)), meshDir, edgePort, stateDir: join(dir, 'state'), cpu: 0, env });
      try {
        const proxy = await weft.proxy(values.path === 'edge' ? 'weft-system/edge' : 'default/bench-client-0');
        const target = values.path === 'edge' ? { port: edgePort, host: 'bench-upstream' } : { port: Number(proxy.listeners.outbound!.split(':').pop()), host: 'mesh-upstream' };
        const idle = (memoryKiB(proxy.pid!)?.rss ?? 0) / 1024;
        const memory: Array<[string, Record<string, number>]> = [];
        const memPrefix = `[${values.path === 'edge' ? 'weft-system/edge' : 'default/bench-client-0'} proxy]`;
        if (values.memory) memory.push(['idle', await memoryColumn(proxy.pid!, weft.proc.output, memPrefix)]);
        // A warm-up at each rate, then the measured run.
        for (const rate of [1000, 5000]) {
          await latency(loadgen, target, { rate, durationS: Number(values.warmup), warmupS: 0.5, connections: 32 }, [proxy.pid!]);
          const from = scavengeLines(weft.proc.output()).at(-1);
          const running = latency(loadgen, target, { rate, durationS: 5, warmupS: 0.5, connections: 32 }, [proxy.pid!]);
          running.catch(() => {}); // awaited below; not unhandled while the sample is taken
          if (values.memory) memory.push([`${rate} req/s`, await sleep(3500).then(() => memoryColumn(proxy.pid!, weft.proc.output, memPrefix))]);
          const r = await running;
          if (values.memory) memory.at(-1)![1]['peak RSS of the run (VmRSS)'] = r.peakRssKiB[0] / 1024;
          for (const prefix of traced) {
            const s = scavenges(weft.proc.output(), from, prefix);
            const pauses = s.map((x) => x.pauseMs).sort((a, b) => a - b);
            const survived = s.map((x) => x.survivePct).sort((a, b) => a - b);
            const promoted = s.reduce((a, x) => a + x.promotedMiB, 0) / 5.5;
            // The run's scavenges cover its 0.5 s warm-up and 5 s measured: rate × 5.5 requests.
            const allocated = s.reduce((a, x) => a + x.allocatedKiB, 0) / (rate * 5.5);
            const young = s.length ? percentile(s.map((x) => x.newSpaceMiB).sort((a, b) => a - b), 50) : 0;
            console.log(
              `| ${v.name} | ${run} | ${idle.toFixed(0)} | ${rate} | ${(r.peakRssKiB[0] / 1024).toFixed(0)} | ${r.latencyUs.p50.toFixed(0)} | ${r.latencyUs.p99.toFixed(0)} | ${r.errors + r.non2xx + r.timeouts} | ${prefix.slice(1)} | ${s.length} | ` +
                `${s.length ? `${percentile(pauses, 50).toFixed(1)} / ${pauses[pauses.length - 1].toFixed(1)}` : '–'} | ${s.length ? percentile(survived, 50).toFixed(1) : '–'} | ${promoted.toFixed(1)} | ${allocated.toFixed(1)} | ${young.toFixed(1)} |`,
            );
          }
        }
        if (values.memory) {
          await sleep(5000);
          memory.push(['5 s after', await memoryColumn(proxy.pid!, weft.proc.output, memPrefix)]);
          memoryTables.push([`${v.name} (run ${run})`, memory]);
        }
      } finally {
        await weft.stop();
      }
    }
  }
  for (const [name, columns] of memoryTables) printMemory(name, columns);
} finally {
  await stopAll();
}
