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
import { Supervisor } from './supervisor.ts';
import { portFree } from './app-port.ts';
import { prepareProxyCode } from './proxy-code.ts';
import { watchPaths } from './watch.ts';
import { apiServer } from './api-server.ts';
import { MeshCa, startCaServer, type CaServer } from './ca-server.ts';
import { DEFAULT_MAX_WORKLOAD_TTL_MS, loadCAFiles, loadOrCreateRootCA, tokenAuthorizer, type Issuer } from '../security/ca.ts';

export interface LocalMeshOptions {
  paths: string[];
  edge: string;
  stateDir: string;
  log(line: string): void;
  output(line: string): void;
  watch: boolean;
  accessLog?: string;
  /**
   * The CA's certificate and key (`--ca-cert`, `--ca-key`; with `caChain` for an intermediate):
   * when absent, a root is created in `<stateDir>/ca` on first start and kept there. While the
   * mesh runs, replacing the files rotates the CA without a failed request.
   */
  caCert?: string;
  caKey?: string;
  caChain?: string;
  /** Workload certificate lifetime (`--cert-ttl`); 24 h when absent. */
  certTtlMs?: number;
  /** How long the old root stays trusted after a rotation starts signing under the new one. */
  rootOverlapMs?: number;
}

/** How long a file set with errors must stay unchanged before the errors are reported. */
const SETTLE_MS = 200;

/** Long enough for every proxy to renew under the new root (they do at once, on the snapshot). */
const ROOT_OVERLAP_MS = 30_000;

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

  // The mesh CA: every proxy's bootstrap token is issued here for its identity, and proves it to the CA.
  let issuer: Issuer;
  try {
    issuer = o.caCert || o.caKey ? await userCa(o) : (await loadOrCreateRootCA(join(stateDir, 'ca'))).issuer;
  } catch (err) {
    throw new StartError(`the mesh CA: ${(err as Error).message}`);
  }
  const tokens = tokenAuthorizer();
  const ca = new MeshCa(issuer, {
    authorize: tokens.authorize,
    defaultTtlMs: o.certTtlMs,
    maxTtlMs: Math.max(o.certTtlMs ?? 0, DEFAULT_MAX_WORKLOAD_TTL_MS),
    issued: (token, cert) => control.certificateIssued(token, { spiffeId: cert.spiffeId, serial: cert.serial, notAfter: cert.notAfter.toISOString() }),
  });
  control.setTrustBundle(ca.trustBundle());
  const caServer: CaServer = await startCaServer({ host: '127.0.0.1', port: 0 }, ca, o.log);

  // Fresh each start, from the sources this weft runs; a bundle that cannot be made only costs memory.
  const proxyCode = join(stateDir, 'proxy-code');
  await rm(proxyCode, { recursive: true, force: true });
  const bundled = await prepareProxyCode(proxyCode).catch((err: Error) => {
    o.log(`could not bundle the sidecars' code (${err.message}); each sidecar runs it from source`);
    return 0;
  });

  const push: PushServer = await startPushServer({ host: '127.0.0.1', port: 0 }, control.handlers());
  supervisor = new Supervisor({
    control,
    controlAddress: push.address,
    log: o.log,
    output: o.output,
    accessLog: o.accessLog,
    proxyCode: bundled ? proxyCode : undefined,
    ca: { address: caServer.address, issue: tokens.issue, revoke: tokens.revoke },
  });

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
    await caServer.close();
    api.close();
    await rm(controlFile, { force: true });
    throw err instanceof StartError ? err : new StartError((err as Error).message);
  }

  // Live edits: a good file set replaces the configuration; a bad one is reported and ignored.
  let reloading = Promise.resolve();
  let bursts = 0;
  const watcher = o.watch
    ? watchPaths(o.paths, () => {
        const burst = ++bursts;
        reloading = reloading.then(async () => {
          const next = await loadMesh(o.paths).catch((err: Error) => ({
            resources: [],
            diagnostics: [{ file: o.paths.join(','), line: 1, col: 1, severity: 'error' as const, code: 'LOAD_FAILED', message: err.message, path: '' }],
          }));
          const errors = next.diagnostics.filter((d) => d.severity === 'error');
          if (errors.length > 0) {
            // Maybe a save caught half-way: if the files change again shortly, that load decides.
            await new Promise((r) => setTimeout(r, SETTLE_MS));
            if (burst !== bursts) return;
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
          o.log(`configuration applied: version ${control.currentVersion}${howSent(control.lastPush)}`);
        });
      })
    : undefined;

  // A user-supplied CA whose files are replaced: rotate to it, the old root trusted until every proxy renewed.
  let rotating = Promise.resolve();
  const caWatcher =
    o.watch && o.caCert && o.caKey
      ? watchPaths([o.caCert, o.caKey, ...(o.caChain ? [o.caChain] : [])], () => {
          rotating = rotating.then(async () => {
            let next: Issuer;
            try {
              next = await userCa(o);
            } catch (err) {
              o.log(`the CA files changed but cannot be used (${(err as Error).message}); still signing with the current CA`);
              return;
            }
            if (next.certPem === ca.issuer().certPem) return;
            o.log('the CA files changed: rotating the mesh CA');
            await ca.rotate(
              next,
              async (bundle) => {
                control.setTrustBundle(bundle);
                await control.whenSettled();
              },
              o.rootOverlapMs ?? ROOT_OVERLAP_MS,
            );
            o.log('CA rotation done: every proxy trusts only the new root');
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
      caWatcher?.close();
      await reloading;
      await supervisor!.stopAll();
      await push.close();
      await caServer.close();
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

function userCa(o: LocalMeshOptions): Promise<Issuer> {
  if (!o.caCert || !o.caKey) throw new Error('--ca-cert and --ca-key go together');
  return loadCAFiles({ certFile: o.caCert, keyFile: o.caKey, chainFile: o.caChain });
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

/** How a push reached the proxies, when no proxy needed a whole snapshot. */
function howSent(p: { snapshots: number; deltas: number }): string {
  if (p.snapshots > 0) return '';
  return p.deltas > 0 ? ' (changes only, no whole snapshot)' : ' (endpoint updates only)';
}
