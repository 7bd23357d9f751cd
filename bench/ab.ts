// A/B of the edge's CPU per request: two versions of Weft side by side under wrk, runs interleaved.
//
// Why it exists: a change to the hot path moves the edge's CPU per request by a few percent, less
// than this machine's drift between two benchmark runs. Here both versions run at once (each its
// own `weft up` of the bench mesh, both on the proxy CPU, the idle one costing nothing), and the
// closed-loop runs alternate A, B, A, B…, so drift falls on both alike. Per run it reads the edge's
// user and system CPU time from /proc and divides by the requests served: the figure that sets
// throughput per core and, at a fixed rate, p50 (docs/performance.md, "What limits").
//
// Usage: node bench/ab.ts [--a REF] [--b REF] [--rounds N] [--seconds S]
//   --a defaults to HEAD, --b to the working tree. Prints one line per run and the medians.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, pinSelf, stopAll } from './lib/procs.ts';
import { startUpstreamNginx } from './lib/upstream.ts';
import { exportWeft, weftUp, writeBenchMesh, type RunningWeft } from './lib/weft.ts';
import { percentile } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: 'HEAD' },
    b: { type: 'string' },
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '5' },
  },
});
const PROXY_CPU = 0;
const LOAD_CPU = 1;
const REPO = fileURLToPath(new URL('..', import.meta.url));
const TICKS_PER_SECOND = 100;

/** User and system CPU seconds of a process so far. */
function cpu(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / TICKS_PER_SECOND, sys: Number(f[12]) / TICKS_PER_SECOND };
}

const tmp = await mkdtemp(join(tmpdir(), 'weft-ab-'));
const running: RunningWeft[] = [];
try {
  pinSelf(LOAD_CPU);
  const upstream = await startUpstreamNginx(tmp, LOAD_CPU);
  const sides: Array<{ name: string; weft: RunningWeft; edgePid: number; runs: Array<{ rps: number; user: number; sys: number }> }> = [];
  for (const [name, ref] of [['A', values.a], ['B', values.b]] as const) {
    await mkdir(join(tmp, name), { recursive: true });
    const root = ref ? await exportWeft(ref, join(tmp, name)) : REPO;
    const { meshDir } = await writeBenchMesh(join(tmp, name), { upstreamPort: upstream.port, ssePort: await freePort(), node: process.execPath, appCpu: LOAD_CPU });
    const weft = await weftUp({ root, meshDir, edgePort: await freePort(), stateDir: join(tmp, name, 'state'), cpu: PROXY_CPU });
    running.push(weft);
    sides.push({ name: `${name} (${ref ?? 'working tree'})`, weft, edgePid: (await weft.proxy('weft-system/edge')).pid!, runs: [] });
  }
  const seconds = Number(values.seconds);
  for (let round = 0; round < Number(values.rounds); round++) {
    // Alternate which side goes first, so neither always follows the other.
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const before = cpu(side.edgePid);
      const wrk = spawnSync('wrk', ['-t1', '-c64', `-d${seconds}s`, '-H', 'Host: bench-upstream', `http://${side.weft.edge}/`], { encoding: 'utf8' });
      const after = cpu(side.edgePid);
      const total = Number(/(\d+) requests in/.exec(wrk.stdout)?.[1]);
      if (!total || /Non-2xx/.test(wrk.stdout)) throw new Error(`wrk through ${side.name} failed:\n${wrk.stdout}${wrk.stderr}`);
      const run = { rps: total / seconds, user: ((after.user - before.user) * 1e6) / total, sys: ((after.sys - before.sys) * 1e6) / total };
      side.runs.push(run);
      console.log(`round ${round + 1} ${side.name}: ${run.rps.toFixed(0)} req/s, user ${run.user.toFixed(1)} µs/req, system ${run.sys.toFixed(1)} µs/req`);
    }
  }
  const median = (xs: number[]) => percentile([...xs].sort((x, y) => x - y), 50);
  console.log('\n| side | req/s | user µs/req | system µs/req | CPU µs/req |\n| --- | ---: | ---: | ---: | ---: |');
  for (const s of sides) {
    const m = (k: 'rps' | 'user' | 'sys') => median(s.runs.map((r) => r[k]));
    console.log(`| ${s.name} | ${m('rps').toFixed(0)} | ${m('user').toFixed(1)} | ${m('sys').toFixed(1)} | ${median(s.runs.map((r) => r.user + r.sys)).toFixed(1)} |`);
  }
} finally {
  for (const w of running) await w.stop();
  await stopAll();
  await rm(tmp, { recursive: true, force: true });
}
