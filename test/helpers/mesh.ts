// Start `weft up` as a real process on a temporary mesh folder, with OS-assigned ports.

import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { start, type Proc } from './process.ts';
import { appPort } from '../../src/control/app-port.ts';

export const WEFT = fileURLToPath(new URL('../../bin/weft.js', import.meta.url));
export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));

export interface RunningWeft {
  proc: Proc;
  dir: string;
  edge: string;
  stateDir: string;
  status(): Promise<StatusJson>;
  stop(): Promise<number | null>;
}

export interface StatusJson {
  version: number;
  proxies: Array<{
    id: string;
    workload: string;
    namespace: string;
    identity: string;
    version: number | null;
    synced: boolean;
    error: string | null;
    pid: number | null;
    appPid: number | null;
    ready: boolean | null;
    listeners: { inbound: string | null; outbound: string | null; admin: string | null };
    certificate: { spiffeId: string; serial: string; notAfter: string } | null;
  }>;
  diagnostics: string[];
}

/**
 * A free port for another process to bind later (weft's edge, an address where nothing listens):
 * below the OS's ephemeral range, so no process binding port 0 meanwhile can take it
 * (src/control/app-port.ts says why that matters).
 */
export const freePort = (): Promise<number> => appPort();

/** Copy fixture folders into a fresh temporary folder (so tests can edit the mesh files). */
export async function meshDir(...fixtures: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'weft-test-'));
  for (const f of fixtures) await cp(join(FIXTURES, f), join(dir, f), { recursive: true });
  return dir;
}

export async function weftUp(dir: string, args: string[], readyTimeoutMs = 60_000): Promise<RunningWeft> {
  const edge = `127.0.0.1:${await freePort()}`;
  const stateDir = join(dir, '.weft');
  const proc = start(process.execPath, [WEFT, 'up', ...args, '--edge', edge, '--state-dir', stateDir], { cwd: dir });
  await proc.waitFor(/weft: ready/, readyTimeoutMs);
  return {
    proc,
    dir,
    edge,
    stateDir,
    async status() {
      const { stdout } = await promisify(execFile)(process.execPath, [WEFT, 'status', '-o', 'json', '--state-dir', stateDir]);
      return JSON.parse(stdout) as StatusJson;
    },
    async stop() {
      const code = await proc.stop('SIGTERM');
      await rm(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/**
 * `weft up -f` on a fresh temporary folder holding `docs` as one mesh file, with an access log
 * (`<dir>/access.log`); also returns the edge's admin address, where /stats and /metrics are.
 */
export async function weftUpDocs(prefix: string, docs: string[]): Promise<{ weft: RunningWeft; accessLog: string; edgeAdmin: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(dir, 'mesh'));
  const accessLog = join(dir, 'access.log');
  await writeFile(join(dir, 'mesh', 'mesh.yaml'), docs.join('---\n'));
  const weft = await weftUp(dir, ['-f', join(dir, 'mesh'), '--access-log', accessLog]);
  const edgeAdmin = (await weft.status()).proxies.find((p) => p.id === 'weft-system/edge')!.listeners.admin!;
  return { weft, accessLog, edgeAdmin };
}

export const agent = new Agent({ connections: 16, keepAliveTimeout: 10_000 });

/** One request through the edge with a Host header. */
export async function viaEdge(edge: string, host: string, path = '/', headers: Record<string, string> = {}, body?: string) {
  const r = await request(`http://${edge}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { host, ...headers },
    body,
    dispatcher: agent,
  });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

/** `count` requests, `concurrency` at a time; counts answers by `classify`, failures by message. */
export async function load(
  count: number,
  concurrency: number,
  send: () => Promise<{ status: number; body: string }>,
  classify: (r: { status: number; body: string }) => string,
): Promise<{ counts: Record<string, number>; failures: string[] }> {
  const counts: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next++;
      try {
        const r = await send();
        if (r.status !== 200) failures.push(`status ${r.status}: ${r.body.slice(0, 200)}`);
        else {
          const k = classify(r);
          counts[k] = (counts[k] ?? 0) + 1;
        }
      } catch (err) {
        failures.push(String(err));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { counts, failures };
}
