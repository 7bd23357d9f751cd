// Configuration scale: translating and pushing a mesh of S services × E endpoints to real proxy
// processes, and how fast one change then reaches every proxy.
//
// It drives Weft's own control plane (ControlPlane + push server, as `weft up` does, minus files
// and workloads) in this process, and starts P real proxy processes (src/proxy/main.ts) that
// connect to it. Times are from handing the control plane its resources to the last proxy's ACK
// (translate per proxy → JSON → HTTP/2 stream → parse → compile → ACK), so they include all of it.
//
// Usage: node bench/config-scale.ts [--root WEFT_CHECKOUT] [--services 1000] [--endpoints 10]
//          [--proxies 4] [--changes 5] [--proxy-cpu 0]
// Prints progress on stderr and one JSON object on stdout.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import type * as ApiModule from '../src/api/index.ts';
import type * as ControlPlaneModule from '../src/control/control-plane.ts';
import type * as PushServerModule from '../src/control/push-server.ts';
import type * as RegistryModule from '../src/registry/registry.ts';
import type * as TranslateModule from '../src/translate/translate.ts';
import type * as CompileModule from '../src/proxy/compile.ts';
import type * as EndpointsModule from '../src/proxy/upstream/endpoints.ts';
import type * as MetricsModule from '../src/proxy/observe/metrics.ts';
import type * as ClockModule from '../src/core/clock.ts';
import type * as RandomModule from '../src/core/random.ts';
import type { Resource, VirtualServiceSpec, WorkloadEntrySpec } from '../src/api/types.ts';
import type { ProxyNode } from '../src/wire/snapshot.ts';
import { memoryKiB, startProcess, stopAll, killAllNow, type Started } from './lib/procs.ts';
import { spread } from './lib/stats.ts';
import { routedService } from './lib/configs.ts';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const root = resolve(flag('root', fileURLToPath(new URL('..', import.meta.url))));
const services = Number(flag('services', '1000'));
const endpointsPer = Number(flag('endpoints', '10'));
const proxies = Number(flag('proxies', '4'));
const changes = Number(flag('changes', '5'));
const proxyCpu = flag('proxy-cpu', '');
const log = (l: string) => process.stderr.write(`config-scale: ${l}\n`);

const load = <T>(rel: string): Promise<T> => import(pathToFileURL(join(root, rel)).href) as Promise<T>;
const api = await load<typeof ApiModule>('src/api/index.ts');
const { ControlPlane } = await load<typeof ControlPlaneModule>('src/control/control-plane.ts');
const { startPushServer } = await load<typeof PushServerModule>('src/control/push-server.ts');
const { buildRegistry } = await load<typeof RegistryModule>('src/registry/registry.ts');
const { translate } = await load<typeof TranslateModule>('src/translate/translate.ts');
const { compileSnapshot } = await load<typeof CompileModule>('src/proxy/compile.ts');
const { EndpointStates } = await load<typeof EndpointsModule>('src/proxy/upstream/endpoints.ts');
const { MeshMetrics } = await load<typeof MetricsModule>('src/proxy/observe/metrics.ts');
const { systemClock } = await load<typeof ClockModule>('src/core/clock.ts');
const { systemRandom } = await load<typeof RandomModule>('src/core/random.ts');

/** S × (Service + DestinationRule + VirtualService) and S × E WorkloadEntries, as a user would write them. */
function meshYaml(): string {
  const docs: string[] = [];
  for (let s = 0; s < services; s++) {
    const name = `svc-${s}`;
    docs.push(routedService(name));
    for (let e = 0; e < endpointsPer; e++) {
      // Distinct addresses on loopback; nothing needs to listen there (no traffic is sent).
      const n = s * endpointsPer + e;
      docs.push(`apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ${name}-${e}}
spec: {address: 127.${1 + (n >> 16)}.${(n >> 8) & 255}.${n & 255}, ports: {http: 8080}, labels: {app: ${name}, version: v1}}
`);
    }
  }
  return docs.join('---\n');
}

function node(i: number): ProxyNode {
  return {
    id: `default/scale-proxy-${i}`,
    kind: 'sidecar',
    workload: `scale-proxy-${i}`,
    namespace: 'default',
    app: `scale-proxy-${i}`,
    version: 'v1',
    serviceAccount: 'default',
    identity: `spiffe://cluster.local/ns/default/sa/default`,
    labels: { app: `scale-proxy-${i}`, version: 'v1' },
  };
}

async function timed<T>(f: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await f();
  return { ms: performance.now() - t, value };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms).unref())]);
}

const dir = await mkdtemp(join(tmpdir(), 'weft-config-scale-'));
const started: Started[] = [];
const onSignal = () => {
  killAllNow();
  process.exit(130);
};
process.on('SIGTERM', onSignal);
process.on('SIGINT', onSignal);

try {
  // 1 — load and validate the files (what `weft up` does before anything else).
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, meshYaml());
  const loaded = await timed(() => api.loadMesh([file]));
  const errors = loaded.value.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(`the generated mesh has errors: ${errors.slice(0, 3).map(api.formatDiagnostic).join('; ')}`);
  const resources = loaded.value.resources;
  log(`${resources.length} resources loaded and validated in ${loaded.ms.toFixed(0)} ms`);

  // 2 — the translation and compilation alone, in this process, for one proxy.
  const registry = await timed(() => buildRegistry(resources, []));
  const translated = await timed(() => translate({ resources, registry: registry.value, proxy: node(0), version: 1 }));
  const json = JSON.stringify(translated.value);
  const compiled = await timed(() =>
    compileSnapshot(JSON.parse(json), { endpoints: new EndpointStates(), metrics: new MeshMetrics(), random: systemRandom, clock: systemClock }),
  );

  // 3 — a real control plane and proxies: first one proxy, then the rest.
  const control = new ControlPlane(() => {});
  const push = await startPushServer({ host: '127.0.0.1', port: 0 }, control.handlers());
  const spawnProxy = (i: number, token: string) => {
    const p = startProcess(`proxy ${i}`, process.execPath, [join(root, 'src/proxy/main.ts')], {
      cpu: proxyCpu === '' ? undefined : Number(proxyCpu),
      ownGroup: false, // in this process's group: stopping us stops them
      env: {
        ...process.env,
        WEFT_PROXY_ID: node(i).id,
        WEFT_PROXY_TOKEN: token,
        WEFT_CONTROL: push.address,
        WEFT_OUTBOUND: '127.0.0.1:0',
        WEFT_ADMIN: '127.0.0.1:0',
      },
    });
    started.push(p);
    return p;
  };
  const connect = async (from: number, to: number) => {
    for (let i = from; i < to; i++) {
      const token = randomBytes(8).toString('hex');
      control.registerProxy({ node: node(i), token });
      spawnProxy(i, token);
    }
    const deadline = Date.now() + 60_000;
    while (control.status().filter((s) => s.connected).length < to) {
      if (Date.now() > deadline) throw new Error('proxies did not connect within 60 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    await within(control.whenSettled(), 60_000, 'initial snapshots');
  };
  await connect(0, 1);
  const initial = await timed(async () => {
    control.setResources(resources);
    await within(control.whenSettled(), 120_000, `pushing ${services}×${endpointsPer} to one proxy`);
  });
  log(`translate + push + compile + ACK to 1 proxy: ${initial.ms.toFixed(0)} ms`);
  const statusOne = control.status()[0];
  if (!statusOne.synced) throw new Error(`proxy 0 did not accept the snapshot: ${statusOne.error}`);

  const joined = await timed(() => connect(1, proxies));
  log(`${proxies - 1} more proxies connected and synced in ${joined.ms.toFixed(0)} ms`);

  // 4 — one change (one endpoint's weight), to every proxy.
  /** `changes` times: `base` with `target` replaced by `change(c)`, timed from handing it over to every proxy's answer. */
  const timeChanges = async (base: Resource[], target: Resource, change: (c: number) => Resource, what: string): Promise<number[]> => {
    const ms: number[] = [];
    for (let c = 0; c < changes; c++) {
      const next = base.map((r) => (r === target ? change(c) : r));
      const t = await timed(async () => {
        control.setResources(next);
        await within(control.whenSettled(), 60_000, what);
      });
      ms.push(t.ms);
    }
    return ms;
  };
  const target = resources.find((r) => r.kind === 'WorkloadEntry')! as Resource<WorkloadEntrySpec>;
  const weighted = (weight: number) => ({ ...target, spec: { ...target.spec, weight } }) as Resource;
  const changeMs = await timeChanges(resources, target, (c) => weighted(2 + c), 'an endpoint change');
  log(`one endpoint change to ${proxies} proxies: ${changeMs.map((m) => m.toFixed(0)).join(', ')} ms`);
  // What the control plane now has: the endpoint at its last weight.
  const current = resources.map((r) => (r === target ? weighted(1 + changes) : r));

  // 5 — one change to routing (one VirtualService's timeout), to every proxy.
  const vs = resources.find((r) => r.kind === 'VirtualService')! as Resource<VirtualServiceSpec>;
  const routeChangeMs = await timeChanges(current, vs, (c) => ({ ...vs, spec: { ...vs.spec, http: [{ ...vs.spec.http![0]!, timeout: `${10 + c}s` }] } }) as Resource, 'a route change');
  log(`one route change to ${proxies} proxies: ${routeChangeMs.map((m) => m.toFixed(0)).join(', ')} ms`);
  const status = control.status();
  const notSynced = status.filter((s) => !s.synced);
  if (notSynced.length) throw new Error(`proxies not in sync after the changes: ${notSynced.map((s) => `${s.id}: ${s.error}`).join('; ')}`);

  const rss = started.map((p) => memoryKiB(p.pid)?.rss ?? NaN);
  await stopAll();
  await push.close();

  process.stdout.write(
    JSON.stringify({
      services,
      endpointsPerService: endpointsPer,
      resources: resources.length,
      proxies,
      loadAndValidateMs: loaded.ms,
      inProcess: {
        buildRegistryMs: registry.ms,
        translateOneProxyMs: translated.ms,
        snapshotBytes: Buffer.byteLength(json),
        compileMs: compiled.ms,
      },
      pushToOneProxyMs: initial.ms,
      otherProxiesJoinMs: joined.ms,
      changeToAllProxiesMs: spread(changeMs),
      routeChangeToAllProxiesMs: spread(routeChangeMs),
      proxyRssKiB: rss,
    }) + '\n',
  );
} catch (err) {
  log((err as Error).stack ?? String(err));
  await stopAll(2000);
  process.exitCode = 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
// Undici pools and timers in this process may keep it alive; the work is done.
process.exit(process.exitCode ?? 0);
