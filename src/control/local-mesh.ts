// Local mode: the control plane, one sidecar per workload, the edge and the file watcher on one machine.

import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { loadMesh, formatDiagnostic } from '../api/index.ts';
import type { Diagnostic, KubeServiceSpec, Resource, ServiceEntrySpec, WorkloadSpec } from '../api/types.ts';
import { labelsMatch } from '../registry/registry.ts';
import { ControlPlane } from './control-plane.ts';
import { startPushServer, type PushServer } from './push-server.ts';
import { Supervisor, portFree } from './supervisor.ts';
import { watchPaths } from './watch.ts';
import { apiServer } from './api-server.ts';

export interface LocalMeshOptions {
  paths: string[];
  edge: string;
  stateDir: string;
  log(line: string): void;
  output(line: string): void;
  watch: boolean;
  accessLog?: string;
}

export interface LocalMesh {
  edge: string;
  api: string;
  /** Admin address of the edge proxy (its /metrics). */
  edgeAdmin: string;
  version(): number;
  stop(): Promise<void>;
}

/** Configuration that is not valid: the caller prints the diagnostics and exits 1. */
export class ConfigError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super(`${diagnostics.filter((d) => d.severity === 'error').length} configuration error(s)`);
    this.diagnostics = diagnostics;
  }
}

/** A problem the user fixes by changing how weft is started (exit 1, one clear line). */
export class StartError extends Error {}

export async function startLocalMesh(o: LocalMeshOptions): Promise<LocalMesh> {
  const first = await loadMesh(o.paths);
  if (first.diagnostics.some((d) => d.severity === 'error')) throw new ConfigError(first.diagnostics);
  for (const d of first.diagnostics) o.log(formatDiagnostic(d));

  const [edgeHost, edgePortText] = splitBind(o.edge);
  if (!(await portFree(Number(edgePortText), edgeHost)))
    throw new StartError(`the edge address ${o.edge} is already in use; stop what listens there or pass --edge HOST:PORT`);

  const stateDir = resolve(o.stateDir);
  const controlFile = join(stateDir, 'control.json');
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const other = await readControlFile(controlFile);
  if (other && other.pid !== process.pid && alive(other.pid))
    throw new StartError(`another weft up (pid ${other.pid}) is running with state dir ${o.stateDir}; stop it or pass --state-dir`);

  let supervisor: Supervisor | undefined;
  const control = new ControlPlane(o.log, (id, l) => supervisor?.proxyConnected(id, l));
  const push: PushServer = await startPushServer({ host: '127.0.0.1', port: 0 }, control.handlers());
  supervisor = new Supervisor({ control, controlAddress: push.address, log: o.log, output: o.output, accessLog: o.accessLog });

  let current = first;
  let lastProblems: string[] = [];
  const apply = (resources: Resource[], only?: (w: Resource<WorkloadSpec>, serves: boolean) => boolean) => {
    control.setResources(resources);
    const serves = servedBy(resources);
    const workloads = resources.filter((r): r is Resource<WorkloadSpec> => r.kind === 'Workload' && r.apiVersion.startsWith('weft.dev/'));
    supervisor!.reconcile(only ? workloads.filter((w) => only(w, serves(w))) : workloads, serves);
  };

  const api: Server = apiServer({
    status: () => {
      const pids = supervisor!.pids();
      return {
        version: control.currentVersion,
        proxies: control.status().map((p) => ({ ...p, appPid: pids[p.id]?.app ?? null, appPort: pids[p.id]?.appPort ?? null })),
        diagnostics: lastProblems,
      };
    },
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  const apiAddress = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  // Written before anything starts, so `weft status` can watch the start-up too.
  await writeFile(controlFile, JSON.stringify({ pid: process.pid, api: apiAddress, edge: o.edge, push: push.address }) + '\n', { mode: 0o600 });
  try {
    await supervisor.startEdge(o.edge);
    // Services first, then their callers, so a client's first request finds its models up.
    apply(first.resources, (_w, serves) => serves);
    await supervisor.whenStarted(30_000);
    apply(first.resources);
    const slow = await supervisor.whenStarted(30_000);
    if (slow.length) o.log(`still waiting for ${slow.join(', ')} to accept connections; going on without them`);
    await control.whenSettled();
  } catch (err) {
    await supervisor.stopAll();
    await push.close();
    api.close();
    await rm(controlFile, { force: true });
    throw err instanceof StartError ? err : new StartError((err as Error).message);
  }

  // Live edits: a good file set replaces the configuration; a bad one is reported and ignored.
  let reloading = Promise.resolve();
  const watcher = o.watch
    ? watchPaths(o.paths, () => {
        reloading = reloading.then(async () => {
          const next = await loadMesh(o.paths).catch((err: Error) => ({
            resources: [],
            diagnostics: [{ file: o.paths.join(','), line: 1, col: 1, severity: 'error' as const, code: 'LOAD_FAILED', message: err.message, path: '' }],
          }));
          const errors = next.diagnostics.filter((d) => d.severity === 'error');
          if (errors.length > 0) {
            lastProblems = errors.map(formatDiagnostic);
            for (const l of lastProblems) o.log(l);
            o.log(`configuration not applied: ${errors.length} error(s); the mesh keeps running on version ${control.currentVersion}`);
            return;
          }
          if (JSON.stringify(next.resources.map(plain)) === JSON.stringify(current.resources.map(plain))) return;
          lastProblems = [];
          current = next;
          for (const d of next.diagnostics) o.log(formatDiagnostic(d));
          apply(next.resources);
          await control.whenSettled();
          o.log(`configuration applied: version ${control.currentVersion}`);
        });
      })
    : undefined;

  const edgeAdmin = control.status().find((p) => p.kind === 'edge')?.listeners.admin ?? '';
  return {
    edge: o.edge,
    api: apiAddress,
    edgeAdmin,
    version: () => control.currentVersion,
    async stop() {
      watcher?.close();
      await reloading;
      await supervisor!.stopAll();
      await push.close();
      await new Promise<void>((r) => api.close(() => r()));
      await rm(controlFile, { force: true });
    },
  };
}

/** Does a Kubernetes Service or ServiceEntry select the workload (so something calls it)? */
function servedBy(resources: readonly Resource[]): (w: Resource<WorkloadSpec>) => boolean {
  const selectors: Array<{ namespace: string; labels: Record<string, string> }> = [];
  for (const r of resources) {
    if (r.kind === 'Service') {
      const sel = (r.spec as KubeServiceSpec).selector;
      if (sel && Object.keys(sel).length > 0) selectors.push({ namespace: r.metadata.namespace, labels: sel });
    } else if (r.kind === 'ServiceEntry') {
      const sel = (r.spec as ServiceEntrySpec).workloadSelector?.labels;
      if (sel && Object.keys(sel).length > 0) selectors.push({ namespace: r.metadata.namespace, labels: sel });
    }
  }
  return (w) => selectors.some((s) => s.namespace === w.metadata.namespace && labelsMatch(s.labels, w.spec.labels));
}

function plain(r: Resource): unknown {
  return { apiVersion: r.apiVersion, kind: r.kind, metadata: r.metadata, spec: r.spec };
}

function splitBind(bind: string): [string, string] {
  const i = bind.lastIndexOf(':');
  return [bind.slice(0, i), bind.slice(i + 1)];
}

async function readControlFile(path: string): Promise<{ pid: number; api: string } | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
