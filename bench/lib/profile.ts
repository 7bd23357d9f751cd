// `bench/run.ts --profile`: CPU-profile Weft's proxies under closed-loop load and print where the time goes.
//
// Runs the benchmark's mesh under `weft up` with NODE_OPTIONS=--cpu-prof (every Node process
// under it writes a V8 profile when it exits), loads the edge and then the mesh path with wrk,
// stops weft, and summarises the edge's and the two sidecars' profiles by self time.

import { copyFile, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startProcess, stopProcess } from './procs.ts';
import { startUpstreamNginx } from './upstream.ts';
import { weftUp, writeBenchMesh } from './weft.ts';
import { throughput } from './measure.ts';
import { summarise, formatSummary } from '../profile-summary.ts';

const BENCH = fileURLToPath(new URL('..', import.meta.url));

export async function profileWeft(o: { tmp: string; weftRoot: string; proxyCpu: number; loadCpu: number; durationS: number }): Promise<void> {
  const say = (l: string) => process.stderr.write(`bench --profile: ${l}\n`);
  const node = process.execPath;
  const { port: upPort, proc: upstream } = await startUpstreamNginx(o.tmp, o.loadCpu);
  const ssePort = await freePort();
  const sseServer = startProcess('sse server', node, [join(BENCH, 'sse-server.ts'), String(ssePort)], { cpu: o.loadCpu });

  const profDir = join(o.tmp, 'profiles');
  await mkdir(profDir);
  const { meshDir } = await writeBenchMesh(o.tmp, { upstreamPort: upPort, ssePort, node, appCpu: o.loadCpu });
  const edgePort = await freePort();
  say('starting weft up with NODE_OPTIONS=--cpu-prof');
  const weft = await weftUp({
    root: o.weftRoot,
    meshDir,
    edgePort,
    stateDir: join(o.tmp, 'weft-state'),
    cpu: o.proxyCpu,
    env: { ...process.env, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${profDir}`.trim() },
  });
  const roles = new Map<number, string>();
  let edgeRps = NaN;
  let meshRps = NaN;
  try {
    const edge = await weft.proxy('weft-system/edge');
    const client = await weft.proxy('default/bench-client-0');
    const server = await weft.proxy('default/mesh-upstream-0');
    roles.set(edge.pid!, 'edge (one hop)');
    roles.set(client.pid!, 'client sidecar (mesh path)');
    roles.set(server.pid!, 'server sidecar (mesh path)');
    const clientPort = Number(client.listeners.outbound!.split(':').pop());
    say(`wrk through the edge for ${o.durationS} s`);
    edgeRps = (await throughput({ port: edgePort, host: 'bench-upstream' }, { durationS: o.durationS, connections: 64 }, [])).rps;
    say(`wrk through the mesh path for ${o.durationS} s`);
    meshRps = (await throughput({ port: clientPort, host: 'mesh-upstream' }, { durationS: o.durationS, connections: 64 }, [])).rps;
  } finally {
    await weft.stop();
    await stopProcess(sseServer);
    await stopProcess(upstream);
  }
  const files = await readdir(profDir);
  process.stdout.write(`Weft proxy CPU profiles under wrk (64 connections): edge ${Math.round(edgeRps)} req/s, mesh path ${Math.round(meshRps)} req/s (profiling slows both)\n\n`);
  for (const [pid, role] of roles) {
    const f = files.find((x) => x.includes(`.${pid}.`));
    if (!f) {
      process.stdout.write(`${role}: no profile written (pid ${pid})\n\n`);
      continue;
    }
    process.stdout.write(`### ${role}\n${formatSummary(summarise(join(profDir, f), 25))}\n\n`);
    // Kept for a flame graph (Chrome DevTools / speedscope); *.cpuprofile is git-ignored.
    const keep = join(BENCH, 'results', 'profiles');
    await mkdir(keep, { recursive: true });
    const name = role.startsWith('edge') ? 'edge' : role.startsWith('client') ? 'client-sidecar' : 'server-sidecar';
    await copyFile(join(profDir, f), join(keep, `${name}.cpuprofile`));
  }
  process.stdout.write('Profiles kept in bench/results/profiles/ (open in Chrome DevTools or speedscope for a flame graph).\n');
}
