// A proxy's garbage collection under open-loop load: RSS, young-generation survival and scavenge pauses, per set of Node options.
//
// Why it exists: Weft's tails at 5000 req/s follow its scavenges (docs/performance.md, "Garbage
// collection"). This runs the bench mesh under `weft up` (proxies on CPU 0, upstream and load on
// CPU 1), drives the edge at 1000 then 5000 req/s with bench/loadgen.c, and reads V8's
// `--trace-gc-nvp` lines from the edge (turned on by a preloaded module, because Node refuses
// trace flags in NODE_OPTIONS). Each variant is a fresh `weft up`.
//
// Usage: node bench/gc-trace.ts [--path edge|mesh] [--runs N] [--warmup SECONDS] [--variant 'NAME=NODE OPTIONS']...
//   e.g. --variant 'semi4=--max-semi-space-size=4'  (default: one variant with no options)
//   --path mesh loads the client sidecar (client sidecar → server sidecar → app) and reports
//   each sidecar's scavenges on a row of its own; RSS is the client sidecar's.
//   --warmup (default 10 s) is the load at each rate before the measured 5 s: young Node
//   processes keep much more of new space alive than warm ones (the minimal Node proxy needs
//   about 13 s at 1000 req/s), and the full benchmark measures warm proxies.

import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
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
  },
});
if (values.path !== 'edge' && values.path !== 'mesh') throw new Error(`--path is edge or mesh, not ${values.path}`);
/** The proxies whose scavenges count, by the prefix weft up puts on their output lines. */
const traced = values.path === 'edge' ? ['[weft-system/edge'] : ['[default/bench-client-0', '[default/mesh-upstream-0'];
const variants = (values.variant ?? ['default=']).map((v) => {
  const eq = v.indexOf('=');
  return { name: v.slice(0, eq), nodeOptions: v.slice(eq + 1) };
});

const tmp = await mkdtemp(join(tmpdir(), 'weft-gc-trace-'));
const loadgen = buildLoadgen(tmp);
const traceModule = join(tmp, 'trace-gc.mjs');
await writeFile(traceModule, "import v8 from 'node:v8';\nv8.setFlagsFromString('--trace-gc-nvp');\n");

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

/** The traced proxies' scavenge lines in `output` (kept capped by procs.ts, so compare lines, not offsets). */
function scavengeLines(output: string): string[] {
  return output.split('\n').filter((line) => traced.some((t) => line.startsWith(t)) && line.includes(' gc=s '));
}

/** The scavenges of the proxy whose lines start with `prefix`, printed after the line `after` (all of them if it is gone or absent). */
function scavenges(output: string, after: string | undefined, prefix: string): Array<{ pauseMs: number; survivePct: number; promotedMiB: number }> {
  const all = scavengeLines(output);
  const lines = all.slice(after === undefined ? 0 : all.lastIndexOf(after) + 1).filter((line) => line.startsWith(prefix));
  const out = [];
  for (const line of lines) {
    const field = (name: string) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1]);
    out.push({ pauseMs: field('pause'), survivePct: field('new_space_survive_rate_'), promotedMiB: field('promoted') / 2 ** 20 });
  }
  return out;
}

try {
  const { port: upPort } = await startUpstreamNginx(tmp, 1);
  console.log('| variant | run | idle RSS MiB | rate | peak RSS MiB | p50 µs (absolute) | p99 µs | failed | proxy | scavenges | pause p50 / max ms | survived p50 % | promoted MiB/s |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |');
  for (let run = 1; run <= Number(values.runs); run++) {
    for (const v of variants) {
      const dir = join(tmp, `${v.name}-${run}`);
      await mkdir(dir);
      const { meshDir } = await writeBenchMesh(dir, { upstreamPort: upPort, ssePort: upPort, node: process.execPath, appCpu: 1 });
      const edgePort = await freePort();
      const env = { ...process.env, NODE_OPTIONS: `${v.nodeOptions} --import ${traceModule}`.trim() };
      const weft = await weftUp({ root: fileURLToPath(new URL('..', import.meta.url)), meshDir, edgePort, stateDir: join(dir, 'state'), cpu: 0, env });
      try {
        const proxy = await weft.proxy(values.path === 'edge' ? 'weft-system/edge' : 'default/bench-client-0');
        const target = values.path === 'edge' ? { port: edgePort, host: 'bench-upstream' } : { port: Number(proxy.listeners.outbound!.split(':').pop()), host: 'mesh-upstream' };
        const idle = (memoryKiB(proxy.pid!)?.rss ?? 0) / 1024;
        // A warm-up at each rate, then the measured run.
        for (const rate of [1000, 5000]) {
          await latency(loadgen, target, { rate, durationS: Number(values.warmup), warmupS: 0.5, connections: 32 }, [proxy.pid!]);
          const from = scavengeLines(weft.proc.output()).at(-1);
          const r = await latency(loadgen, target, { rate, durationS: 5, warmupS: 0.5, connections: 32 }, [proxy.pid!]);
          for (const prefix of traced) {
            const s = scavenges(weft.proc.output(), from, prefix);
            const pauses = s.map((x) => x.pauseMs).sort((a, b) => a - b);
            const survived = s.map((x) => x.survivePct).sort((a, b) => a - b);
            const promoted = s.reduce((a, x) => a + x.promotedMiB, 0) / 5.5;
            console.log(
              `| ${v.name} | ${run} | ${idle.toFixed(0)} | ${rate} | ${(r.peakRssKiB[0] / 1024).toFixed(0)} | ${r.latencyUs.p50.toFixed(0)} | ${r.latencyUs.p99.toFixed(0)} | ${r.errors + r.non2xx + r.timeouts} | ${prefix.slice(1)} | ${s.length} | ` +
                `${s.length ? `${percentile(pauses, 50).toFixed(1)} / ${pauses[pauses.length - 1].toFixed(1)}` : '–'} | ${s.length ? percentile(survived, 50).toFixed(1) : '–'} | ${promoted.toFixed(1)} |`,
            );
          }
        }
      } finally {
        await weft.stop();
      }
    }
  }
} finally {
  await stopAll();
}
