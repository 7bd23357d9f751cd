// `weft up -f` end to end: real processes, real HTTP over loopback, OS-assigned ports.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { meshDir, weftUp, viaEdge, load, WEFT, type RunningWeft } from './helpers/mesh.ts';
import { alive, nameServer } from './helpers/process.ts';

const version = (r: { body: string }) => (JSON.parse(r.body) as { version: string }).version;

describe('weft up -f: a mesh from the user’s files', () => {
  let weft: RunningWeft;
  let meshFile: string;

  before(async () => {
    const dir = await meshDir('split-mesh', 'apps');
    meshFile = join(dir, 'split-mesh', 'mesh.yaml');
    weft = await weftUp(dir, ['-f', join(dir, 'split-mesh')]);
  });
  after(async () => {
    if (weft) await weft.stop();
  });

  test('weft status -o json lists every proxy, synced, with its listeners', async () => {
    const s = await weft.status();
    const ids = s.proxies.map((p) => p.id).sort();
    assert.deepEqual(ids, ['default/caller-0', 'default/echo-v1-0', 'default/echo-v2-0', 'weft-system/edge']);
    for (const p of s.proxies) {
      assert.equal(p.synced, true, `${p.id} synced`);
      assert.equal(p.error, null);
      assert.equal(p.version, s.version);
      assert.match(p.listeners.admin!, /^127\.0\.0\.1:\d+$/);
      assert.match(p.listeners.outbound!, /^127\.0\.0\.1:\d+$/);
      if (p.id !== 'weft-system/edge') {
        assert.match(p.listeners.inbound!, /^127\.0\.0\.1:\d+$/);
        assert.equal(p.ready, true);
      }
    }
    assert.equal(s.proxies.find((p) => p.id === 'default/echo-v1-0')!.identity, 'spiffe://cluster.local/ns/default/sa/default');
  });

  test('proxies run with the memory settings docs/performance.md measured (young generation cap, one malloc arena)', async () => {
    for (const p of (await weft.status()).proxies) {
      const env = (await readFile(`/proc/${p.pid}/environ`, 'utf8')).split('\0');
      assert.ok(env.includes('MALLOC_ARENA_MAX=1'), `${p.id}: ${env.filter((e) => e.startsWith('MALLOC')).join(' ')}`);
      assert.match(env.find((e) => e.startsWith('NODE_OPTIONS=')) ?? '', /--max-semi-space-size=8/, p.id);
    }
  });

  test('a 90/10 split measured over 2000 requests lands within ±3 points', async () => {
    const { counts, failures } = await load(2000, 16, () => viaEdge(weft.edge, 'echo-model', '/predict'), version);
    assert.deepEqual(failures, []);
    const v1 = (counts.v1 ?? 0) / 2000;
    assert.ok(Math.abs(v1 - 0.9) <= 0.03, `v1 share ${v1} (counts ${JSON.stringify(counts)})`);
  });

  test('a header match routes 100 % to its destination', async () => {
    const { counts, failures } = await load(300, 8, () => viaEdge(weft.edge, 'echo-model', '/', { 'x-canary': 'always' }), version);
    assert.deepEqual(failures, []);
    assert.deepEqual(counts, { v2: 300 });
  });

  test('the edge also takes absolute-form proxy requests, and unknown hosts get 404', async () => {
    // absolute-form: curl -x sends `GET http://echo-model/x HTTP/1.1` to the proxy
    const { stdout } = await promisify(execFile)('curl', ['-s', '-x', `http://${weft.edge}`, 'http://echo-model/x', '-H', 'x-canary: always']);
    assert.equal(JSON.parse(stdout).version, 'v2');
    const nr = await viaEdge(weft.edge, 'no-such-service', '/');
    assert.equal(nr.status, 404);
  });

  test('an app reaches a service through its own sidecar with a plain URL', async () => {
    const r = await viaEdge(weft.edge, 'caller', `/call?target=${encodeURIComponent('http://echo-model/hi')}`, { 'x-canary': 'always' });
    assert.equal(r.status, 200, r.body);
    // The caller's fetch carried no x-canary header, so the 90/10 split applied; either version is right.
    assert.match(version(r), /^v[12]$/);
    const s = await weft.status();
    const callerAdmin = s.proxies.find((p) => p.id === 'default/caller-0')!.listeners.admin;
    const metrics = await (await fetch(`http://${callerAdmin}/metrics`)).text();
    assert.match(metrics, /istio_requests_total\{reporter="source",source_workload="caller",[^}]*destination_service="echo-model\.default\.svc\.cluster\.local"[^}]*response_code="200"/);
    const v1Admin = s.proxies.find((p) => p.id === 'default/echo-v1-0')!.listeners.admin;
    const inbound = await (await fetch(`http://${v1Admin}/metrics`)).text();
    assert.match(inbound, /istio_requests_total\{reporter="destination",[^}]*destination_workload="echo-v1"/);
  });

  test('editing the mesh file shifts traffic live with zero failed requests', async () => {
    const original = await readFile(meshFile, 'utf8');
    const before = (await weft.status()).version;
    let stop = false;
    const all: Record<string, number> = {};
    const failures: string[] = [];
    const running = (async () => {
      while (!stop) {
        const r = await load(50, 8, () => viaEdge(weft.edge, 'echo-model', '/'), version);
        failures.push(...r.failures);
        for (const [k, v] of Object.entries(r.counts)) all[k] = (all[k] ?? 0) + v;
      }
    })();
    await sleep(300);
    await writeFile(meshFile, original.replace('weight: 90', 'weight: 5').replace('weight: 10', 'weight: 95'));
    const [applied] = await weft.proc.waitFor(new RegExp(`configuration applied: version ${before + 1}.*`), 15_000);
    // A routing change reaches every proxy as a delta: the virtual host that changed, not the whole snapshot.
    assert.match(applied, /changes only, no whole snapshot/);
    await sleep(300);
    stop = true;
    await running;
    assert.deepEqual(failures, [], 'no request failed while the configuration changed');
    const after = await load(1000, 16, () => viaEdge(weft.edge, 'echo-model', '/'), version);
    assert.deepEqual(after.failures, []);
    const v2 = (after.counts.v2 ?? 0) / 1000;
    assert.ok(Math.abs(v2 - 0.95) <= 0.03, `v2 share after the edit ${v2}`);
    assert.ok((all.v1 ?? 0) > 0 && (all.v2 ?? 0) > 0);
  });

  test('a broken edit is reported and the mesh keeps serving its last good configuration', async () => {
    const good = await readFile(meshFile, 'utf8');
    const before = (await weft.status()).version;
    await writeFile(meshFile, good + '\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: broken\nspec: [\n');
    await weft.proc.waitFor(/configuration not applied: \d+ error\(s\); the mesh keeps running on version/, 15_000);
    const s = await weft.status();
    assert.equal(s.version, before);
    assert.ok(s.diagnostics.length > 0);
    assert.match(s.diagnostics[0], /mesh\.yaml:\d+:\d+: error/);
    const { failures } = await load(200, 8, () => viaEdge(weft.edge, 'echo-model', '/'), version);
    assert.deepEqual(failures, []);
    // A subset no DestinationRule defines is also refused, naming the field.
    const unknownSubset = good.replace('route:\n    - destination: {host: echo-model, subset: v2}', 'route:\n    - destination: {host: echo-model, subset: v9}');
    assert.notEqual(unknownSubset, good);
    await writeFile(meshFile, unknownSubset);
    await weft.proc.waitFor(/UNKNOWN_SUBSET/, 15_000);
    assert.match(weft.proc.output(), /spec\.http\[0\]\.route\[0\]\.destination\.subset/);
    await writeFile(meshFile, good);
  });

  test('WorkloadEntries point at processes already running; endpoint weights give 3:1 traffic, and a weight edit goes as an endpoint update', async () => {
    const a100 = await nameServer('a100-box');
    const t4 = await nameServer('t4-box');
    const gpus = (a100Weight: number, t4Weight: number) => `apiVersion: v1
kind: Service
metadata: {name: gpu-model}
spec:
  selector: {app: gpu-model}
  ports: [{name: http, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a100}
spec: {address: 127.0.0.1, ports: {http: ${a100.port}}, labels: {app: gpu-model, gpu: a100}, weight: ${a100Weight}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: t4}
spec: {address: 127.0.0.1, ports: {http: ${t4.port}}, labels: {app: gpu-model, gpu: t4}, weight: ${t4Weight}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: gpu-model}
spec:
  host: gpu-model
  trafficPolicy: {loadBalancer: {simple: ROUND_ROBIN}}
`;
    const share = async () => {
      const { counts, failures } = await load(400, 4, () => viaEdge(weft.edge, 'gpu-model', '/'), (r) => r.body);
      assert.deepEqual(failures, []);
      return (counts['a100-box'] ?? 0) / 400;
    };
    try {
      const before = (await weft.status()).version;
      await writeFile(join(weft.dir, 'split-mesh', 'gpus.yaml'), gpus(3, 1));
      const [applied] = await weft.proc.waitFor(new RegExp(`configuration applied: version ${before + 1}.*`), 15_000);
      assert.match(applied, /changes only, no whole snapshot/, 'a new service travels as deltas: its virtual host and clusters');
      const first = await share();
      assert.ok(Math.abs(first - 0.75) <= 0.03, `a100 share ${first}`);

      // Only the endpoints' weights change: every proxy gets an endpoint update, not a new snapshot.
      await writeFile(join(weft.dir, 'split-mesh', 'gpus.yaml'), gpus(1, 3));
      const [line] = await weft.proc.waitFor(new RegExp(`configuration applied: version ${before + 2}.*`), 15_000);
      assert.match(line, /endpoint updates only/);
      const status = await weft.status();
      assert.ok(status.proxies.every((p) => p.synced), JSON.stringify(status.proxies.map((p) => [p.id, p.version, p.error])));
      const second = await share();
      assert.ok(Math.abs(second - 0.25) <= 0.03, `a100 share ${second}`);
    } finally {
      await a100.close();
      await t4.close();
    }
  });

  test('SIGTERM stops everything weft up started', async () => {
    const s = await weft.status();
    const pids = s.proxies.flatMap((p) => [p.pid, p.appPid]).filter((p): p is number => typeof p === 'number');
    assert.ok(pids.length >= 7, `pids ${pids}`);
    const code = await weft.stop();
    weft = undefined as unknown as RunningWeft;
    assert.equal(code, 0);
    const deadline = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < deadline) await sleep(50);
    assert.deepEqual(pids.filter(alive), [], 'no process left behind');
  });
});

describe('weft up: bad input says what to fix and loses nothing', () => {
  test('a workload whose command exits is reported; the rest of the mesh keeps running', async () => {
    const dir = await meshDir('split-mesh', 'apps');
    const file = join(dir, 'split-mesh', 'mesh.yaml');
    await writeFile(
      file,
      (await readFile(file, 'utf8')) +
        '\n---\napiVersion: weft.dev/v1alpha1\nkind: Workload\nmetadata: {name: broken-model}\nspec:\n  labels: {app: broken-model}\n  command: [node, ../apps/crasher.ts]\n',
    );
    const weft = await weftUp(dir, ['-f', join(dir, 'split-mesh')]);
    try {
      await weft.proc.waitFor(/workload default\/broken-model-0 exited with code 3; last output: cannot load model weights/);
      const { failures } = await load(100, 4, () => viaEdge(weft.edge, 'echo-model', '/'), version);
      assert.deepEqual(failures, []);
    } finally {
      await weft.stop();
    }
  });

  test('a workload port already in use is reported with what to change', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dir = await meshDir('split-mesh', 'apps');
    const file = join(dir, 'split-mesh', 'mesh.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('env: {VERSION: v2}', `env: {VERSION: v2}\n  port: ${port}`));
    try {
      const weft = await weftUp(dir, ['-f', join(dir, 'split-mesh')]);
      try {
        await weft.proc.waitFor(new RegExp(`workload default/echo-v2-0: port ${port} \\(spec.port\\) is already in use by another process; stop that process or change spec.port`));
        // As in Istio, v2's 10 % goes to an empty subset and gets 503 UH; v1's 90 % is served.
        const r = await load(200, 4, () => viaEdge(weft.edge, 'echo-model', '/'), version);
        assert.ok((r.counts.v1 ?? 0) > 150, JSON.stringify(r));
        assert.ok(r.failures.every((f) => /status 503: no healthy upstream/.test(f)), r.failures.join('\n'));
      } finally {
        await weft.stop();
      }
    } finally {
      blocker.close();
    }
  });

  test('malformed YAML and unknown kinds stop weft up before it starts anything (exit 1)', async () => {
    const dir = await meshDir('split-mesh');
    await writeFile(join(dir, 'bad.yaml'), 'apiVersion: example.com/v1\nkind: Mystery\nmetadata: {name: x}\nspec: {}\n---\nkey: [unclosed\n');
    const r = await promisify(execFile)(process.execPath, [WEFT, 'up', '-f', join(dir, 'bad.yaml'), '--state-dir', join(dir, '.weft')]).catch((e) => e);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.yaml:2:7: error UNKNOWN_KIND: kind: unknown kind example\.com\/v1 Mystery/);
    assert.match(r.stderr, /bad\.yaml:[67]:\d+: error YAML_SYNTAX/);
    assert.match(r.stderr, /nothing was started/);
  });

  test('an edge port in use is a clear start-up error', async () => {
    const { createServer } = await import('node:net');
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    const dir = await meshDir('split-mesh', 'apps');
    try {
      const r = await promisify(execFile)(process.execPath, [WEFT, 'up', '-f', join(dir, 'split-mesh'), '--edge', `127.0.0.1:${port}`, '--state-dir', join(dir, '.weft')]).catch((e) => e);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`the edge address 127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      blocker.close();
    }
  });

  test('usage errors exit 2 and every command has --help', async () => {
    const run = (args: string[]) => promisify(execFile)(process.execPath, [WEFT, ...args]).then((r) => ({ code: 0, ...r }), (e) => e);
    for (const cmd of ['up', 'analyze', 'status']) {
      const h = await run([cmd, '--help']);
      assert.equal(h.code, 0);
      assert.match(h.stdout, new RegExp(`Usage: weft ${cmd}`));
    }
    assert.equal((await run(['up', '--nope'])).code, 2);
    assert.equal((await run(['analyze'])).code, 2);
    assert.equal((await run(['frobnicate'])).code, 2);
    assert.equal((await run(['up', '--edge', 'nonsense'])).code, 2);
  });
});
