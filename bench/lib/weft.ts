// Runs `weft up` for the benchmark and finds the processes on each path with `weft status -o json`.

import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { adoptGroup, freePort, startProcess, stopProcess, type Started } from './procs.ts';
import { changeProbe, upstreamNginxConf, weftMesh } from './configs.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

/** A copy of Weft as committed at `ref`, under `into` (git archive; the repository is not changed). */
export async function exportWeft(ref: string, into: string): Promise<string> {
  if (spawnSync('git', ['-C', REPO, 'rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).status !== 0) throw new Error(`--weft-ref ${ref}: not a commit in ${REPO}`);
  const dir = join(into, `weft-${ref.replace(/[^\w.-]/g, '_')}`);
  await mkdir(dir, { recursive: true });
  execFileSync('bash', ['-c', `git -C "$0" archive "$1" bin src package.json | tar -x -C "$2"`, REPO, ref, dir]);
  execFileSync('ln', ['-s', join(REPO, 'node_modules'), join(dir, 'node_modules')]);
  return dir;
}

/**
 * Writes the benchmark's mesh under `tmp`: `mesh/mesh.yaml` (weftMesh: the one-hop upstreams and
 * the mesh path with its own nginx app, config in `mesh-nginx/`) and `mesh/change-probe.yaml`.
 * Returns the mesh folder and the change probe's port.
 */
export async function writeBenchMesh(tmp: string, o: { upstreamPort: number; ssePort: number; node: string; appCpu: number }): Promise<{ meshDir: string; probePort: number }> {
  const meshDir = join(tmp, 'mesh');
  const meshNginxDir = join(tmp, 'mesh-nginx');
  await mkdir(meshDir);
  await mkdir(meshNginxDir);
  const meshNginxPort = await freePort();
  await writeFile(join(meshNginxDir, 'nginx.conf'), upstreamNginxConf(meshNginxDir, meshNginxPort));
  await writeFile(
    join(meshDir, 'mesh.yaml'),
    weftMesh({
      ...o,
      meshNginxConf: join(meshNginxDir, 'nginx.conf'),
      meshNginxErrorLog: join(meshNginxDir, 'error.log'),
      meshNginxPort,
      sseServer: fileURLToPath(new URL('../sse-server.ts', import.meta.url)),
    }),
  );
  const probePort = await freePort();
  await writeFile(join(meshDir, 'change-probe.yaml'), changeProbe(probePort, 1));
  return { meshDir, probePort };
}

export interface WeftProxyStatus {
  id: string;
  workload: string;
  pid: number | null;
  appPid: number | null;
  synced: boolean;
  listeners: { inbound: string | null; outbound: string | null; admin: string | null };
}

export interface RunningWeft {
  proc: Started;
  edge: string;
  stateDir: string;
  status(): Promise<WeftProxyStatus[]>;
  /** The proxy with this id, from the latest status (throws when absent). */
  proxy(id: string): Promise<WeftProxyStatus>;
  stop(): Promise<void>;
}

export interface WeftUpOptions {
  /** The Weft checkout to run (its bin/weft.js). */
  root: string;
  meshDir: string;
  edgePort: number;
  stateDir: string;
  /** CPU for the whole `weft up` tree (control plane and every proxy). */
  cpu?: number;
  env?: NodeJS.ProcessEnv;
  readyTimeoutMs?: number;
}

export async function weftUp(o: WeftUpOptions): Promise<RunningWeft> {
  const weft = join(o.root, 'bin', 'weft.js');
  const edge = `127.0.0.1:${o.edgePort}`;
  const proc = startProcess('weft up', process.execPath, [weft, 'up', '-f', o.meshDir, '--edge', edge, '--state-dir', o.stateDir], {
    cpu: o.cpu,
    cwd: o.meshDir,
    env: o.env,
  });
  const status = async (): Promise<WeftProxyStatus[]> => {
    const { stdout } = await promisify(execFile)(process.execPath, [weft, 'status', '-o', 'json', '--state-dir', o.stateDir], {
      timeout: 15_000,
    });
    return (JSON.parse(stdout) as { proxies: WeftProxyStatus[] }).proxies;
  };
  const running: RunningWeft = {
    proc,
    edge,
    stateDir: o.stateDir,
    status,
    async proxy(id) {
      const p = (await status()).find((x) => x.id === id);
      if (!p || p.pid === null) throw new Error(`weft status lists no running proxy ${id}`);
      return p;
    },
    async stop() {
      // weft up drains and stops everything it started on SIGTERM; the group kill after the grace
      // period and the adopted app groups cover a weft that cannot.
      await stopProcess(proc, 20_000);
    },
  };
  try {
    await proc.waitFor(/weft: ready/, o.readyTimeoutMs ?? 60_000);
    // Workloads run in their own process groups: remember them so they are stopped even if
    // weft up itself cannot stop them.
    for (const p of await status()) if (p.appPid) adoptGroup(p.appPid);
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}
